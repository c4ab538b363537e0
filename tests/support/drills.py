"""Fault drills: an isolated world per drill, and what must hold after every one.

A drill kills workers, empties Redis or restarts PostgreSQL, so it must not
share them with the session's other tests: each drill gets its own database
(on the shared server, or on a private cluster it may restart), its own Redis
namespace, its own Procfile worker, and drives imports through the real
``bulk-import`` CLI with that environment. The same file imported cleanly in
the same world is the yardstick: a fault may change how long an import takes,
never what it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import redis

from producer.reports import FINAL_STATES
from tests.support.brokers import RedisDrillBroker, drill_broker
from tests.support.imports import export_rows, person, wait_final
from tests.support.services import MailServer, WorkerProcess, free_port, subprocess_env

BULK_IMPORT = str(Path(sys.executable).parent / "bulk-import")


def drill_rows(domain: str, count: int, *, teams: int = 10) -> list[list[str]]:
    """``count`` people in ``teams`` teams, each team's first person its manager."""
    return [
        person(
            f"P{i}",
            "Staff",
            f"p{i}@{domain}",
            f"Team {i % teams}",
            "Manager" if i < teams else "",
            title=f"Title {i % 7}",
        )
        for i in range(count)
    ]


class Drill:
    """One drill's database, Redis namespace, worker and CLI."""

    def __init__(self, database_url: str, redis_url: str, workdir: Path, **worker_env: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.broker = drill_broker()
        self.namespace = self.broker.namespace
        self.workdir = workdir
        self.env = {"DATABASE_URL": database_url, **self.broker.env}
        self.worker = WorkerProcess(
            **self.env,
            # Still rate-limited (the limiter is part of what is drilled), but
            # a drill's few hundred invites should not take half a minute.
            **{"WORKER_PROCESSES": "2", "WORKER_THREADS": "4", "INVITE_RATE_PER_SECOND": "100", **worker_env},
        )
        self.worker.log_path = workdir / "worker.log"

    def cli(self, *args: str | Path | int, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``bulk-import ARGS`` in this drill's environment; fails the test on a non-zero exit."""
        result = subprocess.run(
            [BULK_IMPORT, *map(str, args)],
            env=subprocess_env(**self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"bulk-import {args} exited {result.returncode}: {result.stderr}"
        return result

    def submit(self, path: Path, tenant: str, mode: str = "upsert", invites: str = "now") -> int:
        """``bulk-import run`` without --wait: the import id."""
        out = self.cli("run", path, "--tenant", tenant, "--mode", mode, "--invites", invites).stdout
        return int(out.strip())

    def submit_popen(self, path: Path, tenant: str, mode: str = "upsert") -> subprocess.Popen[str]:
        """Start ``bulk-import run`` and return at once (to submit several side by side)."""
        return subprocess.Popen(
            [BULK_IMPORT, "run", str(path), "--tenant", tenant, "--mode", mode, "--invites", "now"],
            env=subprocess_env(**self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def redis(self) -> redis.Redis:
        """The drill's Redis client (Redis drills only)."""
        assert isinstance(self.broker, RedisDrillBroker), "a Redis drill"
        return self.broker.redis

    def clear_redis(self) -> int:
        """Empty this drill's broker (never anything else); return how many keys or messages went."""
        return self.broker.clear()

    def queued_messages(self, queue: str) -> int:
        """Messages the broker holds for ``queue`` (ready, delayed or in a worker's hands)."""
        return self.broker.held(queue)

    def worker_log(self) -> str:
        return self.worker.log_path.read_text(errors="replace")

    def close(self) -> None:
        self.worker.stop()
        self.broker.close()


async def hold_row_writes(conn: Any) -> None:
    """Hold every worker's row writes until ``conn``'s transaction ends (begun by the caller).

    A drill that needs rows still pending at its fault takes this first, so
    fast workers cannot settle them between the drill's check and its fault.
    """
    await conn.execute("LOCK TABLE people IN EXCLUSIVE MODE")


@contextlib.contextmanager
def paused(worker: WorkerProcess) -> Iterator[None]:
    """The worker's processes stopped (SIGSTOP) for the block, then continued: what a
    test submits meanwhile waits in the broker, however fast the worker would be."""
    assert worker.process is not None
    group = os.getpgid(worker.process.pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


async def wait_rows_settled(conn: Any, import_id: int, at_least: int, timeout: float = 60) -> int:
    """Wait until at least ``at_least`` rows of the import have settled; return how many."""
    deadline = time.monotonic() + timeout
    while True:
        settled = await conn.fetchval(
            "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status NOT IN ('pending', 'invalid')",
            import_id,
        )
        if settled >= at_least:
            return int(settled)
        if time.monotonic() > deadline:
            raise AssertionError(f"only {settled} rows of import {import_id} settled after {timeout}s")
        await asyncio.sleep(0.02)


async def wait_invites_settled(conn: Any, tenant: str, timeout: float = 90) -> None:
    """Wait until none of the tenant's invites is scheduled or being sent."""
    deadline = time.monotonic() + timeout
    while True:
        busy = await conn.fetchval(
            "SELECT count(*) FROM invites WHERE tenant_id = $1 AND status IN ('scheduled', 'sending')", tenant
        )
        if busy == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{busy} invites of {tenant} still unsent after {timeout}s")
        await asyncio.sleep(0.1)


async def outcome(conn: Any, tenant: str, domain: str, import_ids: list[int]) -> dict[str, Any]:
    """What the imports did, comparable across tenants: export, counts, invites."""
    people = {
        email.replace(domain, "x"): {
            key: value.replace(domain, "x") for key, value in row.items() if key != "Invite status"
        }
        | {"Invite status": row["Invite status"]}
        for email, row in (await export_rows(conn, tenant)).items()
    }
    statuses = [await wait_final(conn, import_id, timeout=120) for import_id in import_ids]
    return {
        "people": people,
        "imports": [
            {"state": s["state"], "rows": s["rows"], "deactivated": s["deactivated"], "invites": s["invites"]}
            for s in statuses
        ],
    }


def received(smtp: MailServer) -> Counter[str]:
    """How many e-mails each address received (one pass: parsing headers is slow)."""
    with smtp.lock:
        messages = list(smtp.messages)
    return Counter(address.addr_spec for m in messages for address in m["To"].addresses)


async def check_invariants(
    conn: Any, tenant: str, drill: Drill | None = None, smtp: MailServer | None = None
) -> None:
    """What must hold after any drill, for every import of ``tenant``."""
    imports = await conn.fetch("SELECT id, state FROM imports WHERE tenant_id = $1 ORDER BY id", tenant)
    assert imports, f"tenant {tenant} has no import"
    for imp in imports:
        assert imp["state"] in FINAL_STATES, f"import {imp['id']} left {imp['state']}"
        counters = await conn.fetchrow(
            "SELECT sum(created)::int AS created, sum(updated)::int AS updated,"
            " sum(unchanged)::int AS unchanged, sum(skipped)::int AS skipped, sum(failed)::int AS failed"
            " FROM import_counters WHERE import_id = $1",
            imp["id"],
        )
        rows = dict(
            await conn.fetch(
                "SELECT status, count(*)::int FROM import_rows WHERE import_id = $1 GROUP BY status",
                imp["id"],
            )
        )
        total = await conn.fetchval("SELECT total_rows FROM imports WHERE id = $1", imp["id"])
        # Every outcome counted once: the counters agree with the rows themselves.
        for name, count in dict(counters).items():
            assert count == rows.get(name, 0), f"import {imp['id']}: {name} counted {count}, rows {rows}"
        assert sum(rows.values()) == total, f"import {imp['id']}: rows {rows} do not add up to {total}"
        if imp["state"] in ("done", "blocked"):
            assert rows.get("pending", 0) == 0, f"import {imp['id']} is {imp['state']} with pending rows"
    duplicates = await conn.fetchval(
        "SELECT count(*) FROM (SELECT lower(btrim(email)) FROM people WHERE tenant_id = $1"
        " GROUP BY 1 HAVING count(*) > 1) d",
        tenant,
    )
    assert duplicates == 0, f"{duplicates} e-mails of {tenant} belong to several people"
    invited_twice = await conn.fetchval(
        "SELECT count(*) FROM (SELECT person_id FROM invites WHERE tenant_id = $1 AND status <> 'cancelled'"
        " GROUP BY 1 HAVING count(*) > 1) d",
        tenant,
    )
    assert invited_twice == 0, f"{invited_twice} people of {tenant} hold several live invites"
    if smtp is not None:
        sent = await conn.fetch(
            "SELECT p.email FROM invites i JOIN people p ON p.id = i.person_id"
            " WHERE i.tenant_id = $1 AND i.status = 'sent'",
            tenant,
        )
        counts = received(smtp)
        per_invitee = {row["email"]: counts[row["email"]] for row in sent}
        assert set(per_invitee.values()) <= {1}, f"e-mails received per invitee: {per_invitee}"
    if drill is not None:
        from core.recovery import find_stalled_imports

        stalled = await find_stalled_imports(conn, 0)
        assert [s for s in stalled if s.tenant_id == tenant] == []


async def create_database(server_url: str, name: str) -> str:
    """(Re)create database ``name`` on the server and migrate it; return its URL."""
    import schema
    from core.db import connection

    url = server_url.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    async with connection(url) as conn:
        await schema.migrate(conn)
    return url


async def drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.contextmanager
def shared_server_database(server_url: str, name: str) -> Iterator[str]:
    """A migrated database of its own on the server, dropped afterwards (for sync fixtures)."""
    url = asyncio.run(create_database(server_url, name))
    try:
        yield url
    finally:
        asyncio.run(drop_database(server_url, name))


_SLOW_SETTLING = """
CREATE FUNCTION drill_slow_settling() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep({seconds});
    RETURN NEW;
END $$;
CREATE TRIGGER drill_slow_settling BEFORE UPDATE OF status ON import_rows
FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status <> 'pending')
EXECUTE FUNCTION drill_slow_settling();
"""


def slow_row_settling(database_url: str, milliseconds: int) -> None:
    """Make settling each row take ``milliseconds`` longer in a drill's database (a trigger).

    The workers settle a few hundred rows in well under a second: a drill that
    must stop or break them mid-import needs the import to last, whatever the
    machine's speed.
    """

    async def install() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(_SLOW_SETTLING.format(seconds=milliseconds / 1000))
        finally:
            await conn.close()

    asyncio.run(install())


class PrivateCluster:
    """A PostgreSQL cluster of our own (never the shared one), which a drill may restart.

    Uses the system's PostgreSQL binaries, else pgserver's; as root it runs
    as ``nobody`` (PostgreSQL refuses root), in a temporary directory.
    """

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if found:
            self.bindir = found[-1].parent
        else:
            import importlib.util

            spec = importlib.util.find_spec("pgserver")
            assert spec is not None and spec.submodule_search_locations, "no PostgreSQL binaries"
            self.bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        self.account = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        self.scratch = Path(tempfile.mkdtemp(prefix="bulk-import-drill-pg-"))
        os.chmod(self.scratch, 0o755)
        if self.account is not None:
            os.chown(self.scratch, self.account.pw_uid, self.account.pw_gid)
        self.pgdata = self.scratch / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        result = subprocess.run(
            [str(self.bindir / argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.scratch,
            env=env,
            user=self.account.pw_uid if self.account else None,
            group=self.account.pw_gid if self.account else None,
            extra_groups=[] if self.account else None,
        )
        assert result.returncode == 0, f"{argv[0]} failed: {result.stdout} {result.stderr}"

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c fsync=off"
        log = str(self.scratch / "postgres.log")
        pg_ctl = ["pg_ctl", action, "-D", str(self.pgdata), "-l", log, "-w", "-t", "60"]
        self._run(*pg_ctl, "-o", options, *extra)

    def start(self) -> None:
        """initdb (once) and start."""
        if not self.pgdata.exists():
            self._run(
                "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                "--no-locale", "--no-sync",
            )  # fmt: skip
        self._ctl("start")

    def restart(self) -> None:
        """A fast restart: every client connection is cut."""
        self._ctl("restart", "-m", "fast")

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):
            self._ctl("stop", "-m", "immediate")
        shutil.rmtree(self.scratch, ignore_errors=True)


def sigkill_group(worker: WorkerProcess) -> None:
    """Crash the worker: SIGKILL to its main process and every worker process."""
    worker.stop(signal.SIGKILL)
