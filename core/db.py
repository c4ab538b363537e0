"""Database access: named statements, connections and pools.

Python code runs SQL only by name, so every statement lives in a ``.sql``
file of its package's ``sql/`` folder, one file per concern
(``core/sql/rows.sql`` for the rows' actor, ...), and nobody hunts for SQL in
strings. ``load_queries`` reads a package's folder and refuses a name defined
twice anywhere in it. A module takes the statements it runs by name at its
top (``SETTLE_ROWS = QUERIES["settle_rows"]``), so a name that no file
defines fails when the module loads, not when its rare path first runs
(``tests/integration/test_statements.py`` checks that every look-up is made
there).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import asyncpg
import orjson

_QUERY_HEADER = re.compile(r"^-- name: ([a-z_0-9]+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split a queries file into ``{name: sql}`` at each ``-- name:`` header."""
    parts = _QUERY_HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


class Statements(dict[str, str]):
    """A package's named statements; looking up a name that no file defines says where they live."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.package = package

    def __missing__(self, name: str) -> str:
        folder = self.package.replace(".", "/") + "/sql"
        raise KeyError(f"no statement {name!r} in {folder}/*.sql (a '-- name: {name}' line defines one)")


def load_queries(package: str) -> Statements:
    """Every named statement of ``<package>/sql/*.sql``; a name defined twice is refused."""
    queries = Statements(package)
    folder = resources.files(package).joinpath("sql")
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, sql in parse_queries(entry.read_text(encoding="utf-8")).items():
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice in {package}/sql ({entry.name})")
            queries[name] = sql
    return queries


QUERIES = load_queries("core")
"""The core's statements (``core/sql``); the intake (``core.intake.queries``) and the producer
(``producer.queries``) have their own."""


def _encode_jsonb(value: object) -> bytes:
    # jsonb's binary format is a version byte (1) then the JSON text. orjson:
    # the producer encodes two documents per row it records, and the standard
    # library's encoder was a quarter of its time (py-spy, 200,000 rows).
    return b"\x01" + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> object:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb travels as Python objects; binary so that COPY can carry it too.
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )


# No JIT compilation: the set-based statements over an import's rows are
# simple expressions over many rows, and on their (large) estimates PostgreSQL
# compiled them at every call, for more than it saved (EXPLAIN ANALYZE:
# create_import_teams at 100,000 rows 727 ms with JIT, 74 ms without, and
# 1,047 / 621 ms at a million; release_demoted_managers 150 / 26 ms).
_SERVER_SETTINGS = {"jit": "off"}
# The long-lived processes' sessions (the workers', the web process's pools):
# PostgreSQL gives up on a client that stopped answering within seconds, not
# the kernel's two hours, so the locks of a host cut off in the middle of a
# transaction (its people, its import's counters) are released and the other
# hosts go on (the partition drill: the other host waited on them, made no
# fetch, and so never took over the cut host's messages). Keepalives find a
# silent peer while nothing is in flight, tcp_user_timeout while data sent to
# it goes unacknowledged. Those see only the next hop, though (a proxy, a
# pooler: the drill's relay stays up while the host behind it is gone), so a
# transaction left idle for 10 s is ended too: no transaction of these
# processes waits on anything but its own next statement (none spans a mail,
# an HTTP call or a download; a file's recording is one COPY, active throughout).
POOL_SERVER_SETTINGS = {
    **_SERVER_SETTINGS,
    "plan_cache_mode": "force_custom_plan",
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "idle_in_transaction_session_timeout": "10000",
}


async def connect(database_url: str) -> asyncpg.Connection:
    """One connection with the project's codecs."""
    conn = await asyncpg.connect(database_url, server_settings=_SERVER_SETTINGS)
    await _init_connection(conn)
    return conn


async def create_pool(database_url: str, size: int) -> asyncpg.Pool:
    """A pool with the project's codecs; ``size`` connections at most.

    Every statement is planned for its parameters: asyncpg keeps statements
    prepared per connection, and the generic plan PostgreSQL would otherwise
    settle on was made while an import's tables were still empty (measured:
    locking a batch's people took 21-28 ms at 100,000 rows instead of 0.8 ms).
    """
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        server_settings=POOL_SERVER_SETTINGS,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A short-lived connection for the CLI and the producer."""
    conn = await connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def ensure_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` if it does not exist.

    Returns True when it was created. Connects to the server's ``postgres``
    database to do so, which the configured role must be allowed to.
    """
    try:
        conn = await asyncpg.connect(database_url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    name = urllib.parse.unquote(urllib.parse.urlsplit(database_url).path.lstrip("/"))
    if not name:
        return False
    admin = await asyncpg.connect(database_url, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
    except asyncpg.DuplicateDatabaseError:
        return False
    finally:
        await admin.close()
    return True
