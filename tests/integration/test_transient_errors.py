"""Which errors are transient (``core.errors.is_transient``), on errors a real PostgreSQL raises.

Each error is provoked for real on the session's database (never by stopping
the shared server: a terminated backend of our own, a deadlock, a
serialization failure, a role over its connection limit, a refused port), so
the classification is checked against what asyncpg actually raises, not
against the classes we expect it to raise.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core import imports, rows
from core.db import connect
from core.errors import FileRejected, is_transient
from core.intake.options import ImportOptions
from core.intake.reading import open_csv
from core.intake.submit import ImportRequest, record_import
from core.rows import PERMANENT_ERRORS, RowConflict
from tests.support.imports import person, write_csv
from tests.support.services import free_port


async def error_of(call: Awaitable[Any]) -> BaseException:
    """The exception ``call`` raises (the test fails if it raises none)."""
    try:
        await call
    except BaseException as exc:
        return exc
    raise AssertionError("expected an error, got none")


async def wait_active(conn: Any, pid: int) -> None:
    """Wait until backend ``pid`` is running a statement."""
    query = "SELECT state = 'active' AND wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $1"
    for _ in range(1_000):
        if await conn.fetchval(query, pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never started its statement")


@pytest.fixture
async def probe_table(conn: Any) -> AsyncIterator[str]:
    """A table of two rows that two connections can fight over."""
    name = f"transient_probe_{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, n int NOT NULL CHECK (n >= 0))"
        f";INSERT INTO {name} VALUES (1, 0), (2, 0)"
    )
    yield name
    await conn.execute(f"DROP TABLE {name}")


async def test_a_connection_terminated_mid_query_is_transient_and_so_is_using_it_afterwards(
    conn: Any, database_url: str
) -> None:
    victim = await connect(database_url)
    query = asyncio.ensure_future(victim.fetchval("SELECT pg_sleep(60)"))
    await wait_active(conn, victim.get_server_pid())
    await conn.fetchval("SELECT pg_terminate_backend($1)", victim.get_server_pid())

    lost = await error_of(query)
    closed = await error_of(victim.fetchval("SELECT 1"))

    assert isinstance(lost, asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError), repr(lost)
    assert is_transient(lost), repr(lost)
    assert type(closed) is asyncpg.InterfaceError and "closed" in str(closed), repr(closed)
    assert is_transient(closed)


async def test_an_idle_connection_the_server_terminated_is_transient(conn: Any, database_url: str) -> None:
    # What a pool's idle connections see when PostgreSQL shuts down: the
    # server's notice may arrive before the socket closes, and asyncpg then
    # refuses the next query with an InternalClientError ("another operation
    # (2) is in progress"); or the socket has closed already.
    errors = []
    for _ in range(5):
        victim = await connect(database_url)
        await conn.fetchval("SELECT pg_terminate_backend($1)", victim.get_server_pid())
        errors.append(await error_of(victim.fetchval("SELECT 1")))
        victim.terminate()
    assert all(is_transient(error) for error in errors), errors


async def test_a_refused_connection_and_a_closed_pool_are_transient(database_url: str) -> None:
    refused = await error_of(asyncpg.connect(f"postgresql://127.0.0.1:{free_port()}/postgres", timeout=10))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    await pool.close()
    pool_closed = await error_of(pool.acquire())

    assert isinstance(refused, OSError) and is_transient(refused), repr(refused)
    assert type(pool_closed) is asyncpg.InterfaceError and is_transient(pool_closed), repr(pool_closed)


async def test_a_deadlock_and_a_serialization_failure_are_transient(
    conn: Any, database_url: str, probe_table: str
) -> None:
    first, second = await connect(database_url), await connect(database_url)
    try:
        # Each holds one row and asks for the other's: PostgreSQL aborts one of them.
        first_tx, second_tx = first.transaction(), second.transaction()
        await first_tx.start()
        await second_tx.start()
        await first.execute(f"UPDATE {probe_table} SET n = n + 1 WHERE id = 1")
        await second.execute(f"UPDATE {probe_table} SET n = n + 1 WHERE id = 2")
        results = await asyncio.gather(
            first.execute(f"UPDATE {probe_table} SET n = n + 1 WHERE id = 2"),
            second.execute(f"UPDATE {probe_table} SET n = n + 1 WHERE id = 1"),
            return_exceptions=True,
        )
        await first_tx.rollback()
        await second_tx.rollback()
        deadlocks = [r for r in results if isinstance(r, BaseException)]
        assert len(deadlocks) == 1 and isinstance(deadlocks[0], asyncpg.DeadlockDetectedError), results
        assert is_transient(deadlocks[0])

        # A repeatable-read transaction updating a row changed since its snapshot.
        async with first.transaction(isolation="repeatable_read"):
            await first.fetchval(f"SELECT n FROM {probe_table} WHERE id = 1")
            await second.execute(f"UPDATE {probe_table} SET n = n + 1 WHERE id = 1")
            serialization = await error_of(first.execute(f"UPDATE {probe_table} SET n = 5 WHERE id = 1"))
            assert isinstance(serialization, asyncpg.SerializationError), repr(serialization)
            assert is_transient(serialization)
    finally:
        await first.close()
        await second.close()


async def test_too_many_connections_and_timeouts_are_transient(conn: Any, database_url: str) -> None:
    role = f"transient_probe_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    try:
        too_many = await error_of(asyncpg.connect(database_url, user=role))
    finally:
        await conn.execute(f'DROP ROLE "{role}"')
    slow = await connect(database_url)
    try:
        client_timeout = await error_of(slow.fetchval("SELECT pg_sleep(5)", timeout=0.2))
    finally:
        slow.terminate()
    async with conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = '50ms'")
        cancelled = await error_of(conn.fetchval("SELECT pg_sleep(5)"))

    assert isinstance(too_many, asyncpg.TooManyConnectionsError) and is_transient(too_many), repr(too_many)
    assert isinstance(client_timeout, TimeoutError) and is_transient(client_timeout), repr(client_timeout)
    assert isinstance(cancelled, asyncpg.QueryCanceledError) and is_transient(cancelled), repr(cancelled)


async def test_errors_about_the_data_or_the_code_are_not_transient(conn: Any, probe_table: str) -> None:
    refused = [
        await error_of(conn.fetchval("SELECT 'abc'::int")),
        await error_of(conn.execute(f"UPDATE {probe_table} SET n = -1 WHERE id = 1")),
        await error_of(conn.execute(f"UPDATE {probe_table} SET n = NULL WHERE id = 1")),
        await error_of(conn.execute(f"INSERT INTO {probe_table} VALUES (1, 0)")),
        await error_of(conn.fetchval("SELECT $1::int", "not a number")),  # asyncpg's own DataError
        await error_of(conn.fetchval("SELEC 1")),
    ]
    assert [type(e).__name__ for e in refused] == [
        "InvalidTextRepresentationError",
        "CheckViolationError",
        "NotNullViolationError",
        "UniqueViolationError",
        "DataError",
        "PostgresSyntaxError",
    ]
    assert [is_transient(e) for e in refused] == [False] * len(refused)
    # What fails a row at once is never what leaves one pending.
    assert all(isinstance(e, PERMANENT_ERRORS) for e in refused[:3])
    assert not any(is_transient(cls("x")) for cls in PERMANENT_ERRORS)
    assert is_transient(RowConflict("created concurrently"))
    assert not is_transient(FileRejected("not a CSV")) and not is_transient(KeyError("row"))


async def test_a_batch_that_loses_its_connection_settles_nothing(
    conn: Any, database_url: str, tmp_path: Path, tenant: str
) -> None:
    path = write_csv(
        tmp_path / "a.csv", [person(f"P{i}", "X", f"p{i}@example.com", "Sales") for i in range(5)]
    )
    with open_csv(path) as source:
        import_id = await record_import(
            conn, ImportRequest(tenant=tenant, options=ImportOptions(mode="upsert")), source
        )
    assert await imports.start_next_import(conn, tenant) == import_id
    row_numbers: list[int] = []

    async def collect(_: int, batch: list[int]) -> None:
        row_numbers.extend(batch)

    await imports.dispatch_pending_rows(conn, import_id, collect)
    victim = await connect(database_url)
    await conn.fetchval("SELECT pg_terminate_backend($1)", victim.get_server_pid())

    error = await error_of(rows.process_rows(victim, import_id, row_numbers))

    assert is_transient(error), repr(error)
    statuses = await conn.fetch("SELECT DISTINCT status FROM import_rows WHERE import_id = $1", import_id)
    assert [r["status"] for r in statuses] == ["pending"]


async def test_the_pools_sessions_give_up_on_a_silent_client_within_seconds(database_url: str) -> None:
    # A host cut off mid-transaction must not hold its locks for the kernel's
    # two hours (core.db.POOL_SERVER_SETTINGS): every pooled session has them.
    from core.db import POOL_SERVER_SETTINGS, create_pool

    pool = await create_pool(database_url, 2)
    try:
        async with pool.acquire() as conn:
            shown = {
                name: await conn.fetchval("SELECT current_setting($1)", name) for name in POOL_SERVER_SETTINGS
            }
    finally:
        await pool.close()
    assert shown["tcp_keepalives_idle"] == "5" and shown["tcp_keepalives_count"] == "3"
    assert shown["tcp_user_timeout"] == "10000"
    assert shown["idle_in_transaction_session_timeout"] == "10s"
    assert shown["plan_cache_mode"] == "force_custom_plan" and shown["jit"] == "off"
