#!/usr/bin/env python
"""Side-by-side throughput benchmark of the bulk import (issue 5).

    .venv/bin/python tests/bench/throughput.py --rows 100000 [--processes 2] [--threads 32] [--json]

In one run, on one generated people file (``producer.demo.sample``), in a fresh
database of its own (``bulk_import_bench_<pid>``, migrated, dropped at the end
unless ``--keep-db``) and a Redis namespace of its own, it measures:

- system: the whole system end to end. The producer (``bulk-import run FILE
  --tenant T --mode upsert`` as a subprocess) plus the Procfile's ``worker:``
  line (started and booted before the clock starts), from the start of the
  submit to the import ``done`` with managers resolved.
- naive: a hand-written serial loop, one ``INSERT ... ON CONFLICT DO UPDATE``
  per row (autocommit, one connection), what an admin's script does.
- copy: COPY into a staging table and set-based merges (teams, people,
  managers): PostgreSQL's own limit.
- ceiling: the same worker line and settings consuming no-op messages
  (``tests/bench/noop_actor.py``): dramatiq's own limit on our broker.
- stock_ceiling: the same, on a stock dramatiq RedisBroker with nothing of
  ours (``tests/bench/stock_noop_actor.py``, ``references.py``): the anchor.
- updates, migration (only when asked, after system): the system run's people
  imported again with every job title changed (the update path), or with every
  e-mail's domain changed, in sync mode (a domain migration: renames by
  Employee ID with ``--employee-ids``, else by a ``Previous email`` column).
- resync (only when asked, after system): the system run's people again in
  sync mode with 1% of the rows changed (``tests/bench/resync.py``): what a
  nightly file costs when most of it changes nothing.
- producer (only with ``--only producer``): the producer alone, no worker,
  for its time and peak memory on big files.
- fairness (only with ``--only fairness``): while an import of
  ``--fairness-rows`` rows (150,000) runs, a 40-row import of another tenant
  is submitted; the seconds from its submit to ``done``.

``--employee-ids`` gives the generated file an Employee ID per person and has
the producer match people by it (``--match-by employee-id``): the system rate
with ids, to set beside a run without the flag.

Before anything is measured, ``--history-rows`` (5,000) rows of another
tenant are imported to ``done`` with the real system, so that every
measurement runs on a database with statistics and history. The system
measurement also reports its phases and its rate by tenth of the rows.

Not a test: nothing asserts a time. Numbers on a shared machine are noisy;
compare the ratios of one run. See tests/bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import references
import resync
from harness import (
    BENCH_DIR,
    DB_NAME,
    FINAL_FAILURES,
    NAMESPACE,
    PID,
    ROOT,
    BenchError,
    Worker,
    ceiling_command,
    cpu_seconds,
    kib_to_mb,
    proc_status_kib,
    procfile_command,
    server_url,
    subprocess_env,
    with_database,
)

# The root of this checkout first, so a scratch copy benchmarks its own code.
sys.path.insert(0, str(ROOT))

MEASUREMENTS = (
    "ceiling",
    "stock_ceiling",
    "system",
    "updates",
    "migration",
    "resync",
    "naive",
    "copy",
    "producer",
    "fairness",
)
DEFAULT_MEASUREMENTS = ("ceiling", "stock_ceiling", "system", "naive", "copy")
# The ceilings read the Redis broker's keys: on RabbitMQ they are left out.
REDIS_ONLY_MEASUREMENTS = ("ceiling", "stock_ceiling")
RABBITMQ_SERVER = os.environ.get("BENCH_RABBITMQ_SERVER") or "amqp://guest:guest@127.0.0.1:5672"
FAIRNESS_SMALL_ROWS = 40  # the small import of the fairness measurement
ENQUEUE_CHUNK = 1_000  # what the dispatcher sends per pipeline (core.imports.DISPATCH_BATCH)


# --------------------------------------------------------------------------- profiling aids


@dataclass
class PgSampler:
    """Samples pg_stat_activity of the bench database: what the backends are doing."""

    database_url: str
    interval: float = 0.1
    samples: int = 0
    states: collections.Counter[str] = field(default_factory=collections.Counter)
    active_queries: collections.Counter[str] = field(default_factory=collections.Counter)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            while True:
                rows = await conn.fetch(
                    """SELECT state, wait_event_type, wait_event, query
                       FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()
                         AND backend_type = 'client backend'"""
                )
                self.samples += 1
                for row in rows:
                    state = row["state"] or "?"
                    wait = (
                        f"{row['wait_event_type']}:{row['wait_event']}" if row["wait_event_type"] else "CPU"
                    )
                    if state == "active":
                        self.states[f"active {wait}"] += 1
                        self.active_queries[_query_label(row["query"])] += 1
                    else:
                        self.states[state] += 1
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        per_sample = {k: round(v / max(self.samples, 1), 2) for k, v in self.states.most_common()}
        queries = {k: round(v / max(self.samples, 1), 2) for k, v in self.active_queries.most_common(12)}
        return {"samples": self.samples, "backends_per_sample": per_sample, "active_queries": queries}


def _query_label(query: str) -> str:
    """A short recognisable label for a statement: its verb and first table."""
    lines = [line for line in query.splitlines() if not line.strip().startswith("--")]
    text = " ".join(" ".join(lines).split())
    verb = text.split(" ", 1)[0].upper() if text else "?"
    table = re.search(r"\b(?:UPDATE|INSERT INTO|DELETE FROM|FROM|COPY)\s+(\w+)", text, re.IGNORECASE)
    label = f"{verb} {table.group(1)}" if table else text[:50]
    return label + (" FOR UPDATE" if "FOR UPDATE" in text.upper() else "")


def start_py_spy(pids: list[int], out_dir: Path, duration: int, label: str) -> list[subprocess.Popen[bytes]]:
    """``py-spy record --format raw`` on each pid, in the background."""
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        print("bench: py-spy not found, no profile", file=sys.stderr)
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    spies = []
    for pid in pids:
        output = out_dir / f"{label}-{pid}.txt"
        spies.append(
            subprocess.Popen(
                [
                    *(py_spy, "record", "--pid", str(pid), "--duration", str(duration)),
                    *("--format", "raw", "--threads", "--output", str(output)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(out_dir / f"{label}-{pid}.log").open("wb"),
            )
        )
    return spies


# --------------------------------------------------------------------------- the people file


LANGUAGE_CODES = {"english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it"}


def _language(value: str) -> str | None:
    value = value.strip().lower()
    if not value:
        return None
    return value if len(value) == 2 else LANGUAGE_CODES.get(value)


def people_from_csv(path: Path) -> Iterator[tuple[Any, ...]]:
    """The file's people, cleaned as a hand-written script would (csv.DictReader)."""
    with path.open(newline="", encoding="utf-8") as source:
        for row_number, rec in enumerate(csv.DictReader(source), start=2):
            secondary = [s.strip() for s in (rec["Secondary team"] or "").split(";") if s.strip()]
            yield (
                row_number,
                rec["Email"].strip().lower(),
                rec["First name"].strip(),
                rec["Last name"].strip(),
                rec["Job title"].strip() or None,
                (rec["Role"].strip().lower() or "learner"),
                _language(rec["Language"]),
                rec["Location"].strip() or None,
                rec["Primary team"].strip() or None,
                secondary,
            )


def team_key(name: str) -> str:
    return "".join(name.split()).lower()


# --------------------------------------------------------------------------- SQL of the baselines

NAIVE_TEAM = """
INSERT INTO teams (tenant_id, name) VALUES ($1, $2)
ON CONFLICT (tenant_id, name_key) DO UPDATE SET name = teams.name
RETURNING id"""

NAIVE_PERSON = """
INSERT INTO people (tenant_id, email, first_name, last_name, job_title, role, language, location,
                    primary_team_id, secondary_team_ids)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, email) DO UPDATE
SET first_name = excluded.first_name, last_name = excluded.last_name, job_title = excluded.job_title,
    role = excluded.role, language = excluded.language, location = excluded.location,
    primary_team_id = excluded.primary_team_id, secondary_team_ids = excluded.secondary_team_ids,
    status = 'active', deactivated_at = NULL, updated_at = now()"""

# The first Manager of each team, in file order (people ids follow the file in a serial loop).
NAIVE_TEAM_MANAGERS = """
UPDATE teams t SET manager_id = fm.person_id
FROM (SELECT DISTINCT ON (primary_team_id) primary_team_id AS team_id, id AS person_id
      FROM people WHERE tenant_id = $1 AND role = 'manager' AND status = 'active'
        AND primary_team_id IS NOT NULL
      ORDER BY primary_team_id, id) fm
WHERE t.tenant_id = $1 AND t.id = fm.team_id AND t.manager_id IS DISTINCT FROM fm.person_id"""

COPY_STAGING = """
CREATE TEMP TABLE bench_staging (
    row_number integer, email text, first_name text, last_name text, job_title text, role text,
    language text, location text, primary_team text, secondary_teams text[]
)"""
COPY_COLUMNS = (
    "row_number",
    "email",
    "first_name",
    "last_name",
    "job_title",
    "role",
    "language",
    "location",
    "primary_team",
    "secondary_teams",
)

COPY_TEAMS = r"""
INSERT INTO teams (tenant_id, name)
SELECT DISTINCT ON (lower(regexp_replace(n.name, '\s', '', 'g'))) $1, n.name
FROM (SELECT row_number, 0::bigint AS position, primary_team AS name
      FROM bench_staging WHERE primary_team IS NOT NULL
      UNION ALL
      SELECT s.row_number, x.position, x.name
      FROM bench_staging s, unnest(s.secondary_teams) WITH ORDINALITY AS x(name, position)) n
ORDER BY lower(regexp_replace(n.name, '\s', '', 'g')), n.row_number, n.position
ON CONFLICT (tenant_id, name_key) DO NOTHING"""

COPY_PEOPLE = r"""
INSERT INTO people (tenant_id, email, first_name, last_name, job_title, role, language, location,
                    primary_team_id, secondary_team_ids)
WITH secondary AS (
    SELECT s.row_number, array_agg(st.id ORDER BY x.position) AS ids
    FROM bench_staging s
    CROSS JOIN unnest(s.secondary_teams) WITH ORDINALITY AS x(name, position)
    JOIN teams st ON st.tenant_id = $1 AND st.name_key = lower(regexp_replace(x.name, '\s', '', 'g'))
    GROUP BY s.row_number
)
SELECT DISTINCT ON (s.email) $1, s.email, s.first_name, s.last_name, s.job_title, s.role, s.language,
       s.location, pt.id, coalesce(secondary.ids, '{}')
FROM bench_staging s
LEFT JOIN teams pt ON pt.tenant_id = $1 AND pt.name_key = lower(regexp_replace(s.primary_team, '\s', '', 'g'))
LEFT JOIN secondary ON secondary.row_number = s.row_number
ORDER BY s.email, s.row_number
ON CONFLICT (tenant_id, email) DO UPDATE
SET first_name = excluded.first_name, last_name = excluded.last_name, job_title = excluded.job_title,
    role = excluded.role, language = excluded.language, location = excluded.location,
    primary_team_id = excluded.primary_team_id, secondary_team_ids = excluded.secondary_team_ids,
    status = 'active', deactivated_at = NULL, updated_at = now()"""

COPY_TEAM_MANAGERS = """
UPDATE teams t SET manager_id = fm.person_id
FROM (SELECT DISTINCT ON (p.primary_team_id) p.primary_team_id AS team_id, p.id AS person_id
      FROM bench_staging s JOIN people p ON p.tenant_id = $1 AND p.email = s.email
      WHERE p.role = 'manager' AND p.status = 'active' AND p.primary_team_id IS NOT NULL
      ORDER BY p.primary_team_id, s.row_number) fm
WHERE t.tenant_id = $1 AND t.id = fm.team_id AND t.manager_id IS DISTINCT FROM fm.person_id"""

TENANT_FIGURES = """
SELECT count(*)::int AS people, count(nullif(t.manager_id, p.id))::int AS with_manager,
       (SELECT count(*)::int FROM teams WHERE tenant_id = $1) AS teams,
       (SELECT count(manager_id)::int FROM teams WHERE tenant_id = $1) AS teams_with_manager
FROM people p LEFT JOIN teams t ON t.tenant_id = p.tenant_id AND t.id = p.primary_team_id
WHERE p.tenant_id = $1"""


# --------------------------------------------------------------------------- measurements


@dataclass
class Bench:
    args: argparse.Namespace
    csv_path: Path
    work_dir: Path
    database_url: str
    env: dict[str, str]
    result: dict[str, Any] = field(default_factory=dict)
    # What the producer reads: the CSV itself, or the same rows as a workbook (--format xlsx).
    producer_path: Path | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    _wall_start: float = 0.0
    _done_wall: float = 0.0
    _producer_exit_wall: float = 0.0
    _logs: list[Path] = field(default_factory=list)  # the system run's producer output and worker log

    @property
    def rows(self) -> int:
        return int(self.args.rows)

    def worker(self, command: str, name: str) -> Worker:
        env = subprocess_env(
            self.env, WORKER_PROCESSES=str(self.args.processes), WORKER_THREADS=str(self.args.threads)
        )
        return Worker(command, env, self.work_dir / f"{name}-worker.log", self.args.processes)

    def producer_command(self, tenant: str, path: Path | None = None, mode: str = "upsert") -> list[str]:
        cli = Path(sys.executable).parent / "bulk-import"
        prefix = (
            [str(cli)] if cli.exists() else [sys.executable, "-c", "from producer.cli import main; main()"]
        )
        path = path or self.producer_path or self.csv_path
        match_by = "employee-id" if self.args.employee_ids else "email"
        return [*prefix, "run", str(path), "--tenant", tenant, "--mode", mode, "--match-by", match_by]

    # ----------------------------------------------------------------- (d) ceiling
    async def ceiling(self) -> None:
        """(d) The same worker line and settings on a no-op actor: dramatiq's own limit.

        Three readings: the pipelined enqueue alone (no worker running); the
        consumption alone (the queue filled beforehand, timed from the worker's
        boot to the queue empty: the ceiling); and both at once (enqueue N while
        the booted worker consumes, timed to the queue empty), as in the system.
        """
        import redis

        from core.queues import enqueue_many

        sys.path.insert(0, str(BENCH_DIR))
        import noop_actor

        def enqueue_all() -> float:
            started = time.monotonic()
            for first in range(0, self.rows, ENQUEUE_CHUNK):
                last = min(first + ENQUEUE_CHUNK, self.rows)
                enqueue_many(noop_actor.QUEUE, "noop", [(0, n) for n in range(first, last)])
            return time.monotonic() - started

        async def drained(since: float) -> float:
            deadline = since + self.rows * 0.01 + 120
            while (left := client.hlen(key)) > 0:
                if time.monotonic() > deadline:
                    raise BenchError(f"the no-op worker left {left} messages; see {worker.log_path}")
                await asyncio.sleep(0.01)
            return time.monotonic() - since

        worker = self.worker(ceiling_command(), "ceiling")
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        key = f"{NAMESPACE}:{noop_actor.QUEUE}.msgs"
        try:
            enqueued = enqueue_all()
            worker.start()
            # The clock starts at the boot the log shows; consumers start a little
            # earlier, so at small sizes part of the queue is gone by then.
            acked_before_boot = self.rows - client.hlen(key)
            consumed = await drained(worker.booted_at)
            started = time.monotonic()
            enqueued_under_load = enqueue_all()
            both = await drained(started)
            _, child_rss = worker.peak_rss_mb()
        finally:
            worker.stop()
            client.close()
        self.result |= {
            "ceiling_msgs_per_s": round(self.rows / consumed),
            "ceiling_seconds": round(consumed, 2),
            "ceiling_acked_before_boot": acked_before_boot,
            "enqueue_msgs_per_s": round(self.rows / enqueued),
            "ceiling_concurrent_msgs_per_s": round(self.rows / both),
            "enqueue_under_load_msgs_per_s": round(self.rows / enqueued_under_load),
            "ceiling_worker_peak_rss_mb": child_rss,
        }

    # ----------------------------------------------------------------- stock ceiling
    async def stock_ceiling(self) -> None:
        """A no-op actor on a stock dramatiq RedisBroker (references.stock_ceiling): dramatiq as shipped."""
        worker = self.worker(references.stock_ceiling_command(), "stock-ceiling")
        self.result |= await references.stock_ceiling(self.rows, worker, self.env)

    # ----------------------------------------------------------------- history
    async def history(self, key: str = "history_seconds") -> None:
        """Another tenant's import to done before anything is measured (references.import_history).

        Reported under ``key``, counted nowhere.
        """
        rows = int(self.args.history_rows)
        if rows <= 0:
            return
        print(
            f"bench: history ({rows} rows of another tenant, not measured) ...", file=sys.stderr, flush=True
        )
        worker = self.worker(procfile_command("worker"), key.removesuffix("_seconds").replace("_", "-"))
        seconds = await references.import_history(
            rows, self.database_url, self.work_dir, worker, self.producer_command, self.env
        )
        self.result |= {"history_rows": rows, key: round(seconds, 2)}
        clear_namespace(self.env["REDIS_URL"])

    # ----------------------------------------------------------------- (a) system
    async def system(self, *, with_worker: bool = True) -> None:
        """(a) The producer CLI plus the Procfile worker; without the worker, the producer alone."""
        import asyncpg

        tenant = "bench-system" if with_worker else "bench-producer"
        conn = await asyncpg.connect(self.database_url)
        try:
            if with_worker:
                worker = self.worker(procfile_command("worker"), "system")
                try:
                    await self._timed_import(conn, tenant, worker)
                finally:
                    worker.stop()
            else:
                await self._timed_import(conn, tenant, None)
            await self._import_figures(conn, tenant, with_worker)
        finally:
            await conn.close()

    # ----------------------------------------------------------------- updates
    async def updates(self) -> None:
        """The system again, on the system run's people with every job title changed: the
        update path (where an import records the values it replaces), as ``updates_*``."""
        import asyncpg

        if "system_rows_per_s" not in self.result:
            raise BenchError("updates imports the system run's people again: put system before it in --only")
        retitled = retitle(self.csv_path, self.work_dir / "people-retitled.csv")
        kept = {key: self.result[key] for key in _SYSTEM_KEYS if key in self.result}
        conn = await asyncpg.connect(self.database_url)
        try:
            worker = self.worker(procfile_command("worker"), "updates")
            try:
                await self._timed_import(conn, "bench-system", worker, retitled)
            finally:
                worker.stop()
            updated = await conn.fetchval(
                "SELECT sum(c.updated)::int FROM import_counters c WHERE c.import_id ="
                " (SELECT max(id) FROM imports WHERE tenant_id = 'bench-system')"
            )
        finally:
            await conn.close()
        self.result |= {f"updates_{key.removeprefix('system_')}": self.result[key] for key in _SYSTEM_KEYS}
        self.result |= kept
        self.figures["updates"] = {"updated": updated}

    # ----------------------------------------------------------------- migration
    async def migration(self) -> None:
        """The system run's people again with every e-mail's domain changed, in sync mode: a
        domain migration, file → done, as ``migration_*``; every person renamed, nobody
        created or deactivated (checked in ``checks.migration``)."""
        import asyncpg

        if "system_rows_per_s" not in self.result:
            raise BenchError("migration moves the system run's people: put system before it in --only")
        moved = migrate_domain(
            self.csv_path, self.work_dir / "people-migrated.csv", previous=not self.args.employee_ids
        )
        kept = {key: self.result[key] for key in _SYSTEM_KEYS if key in self.result}
        conn = await asyncpg.connect(self.database_url)
        try:
            worker = self.worker(procfile_command("worker"), "migration")
            try:
                await self._timed_import(conn, "bench-system", worker, moved, mode="sync")
            finally:
                worker.stop()
            imp = await conn.fetchrow(
                "SELECT i.id, i.email_changed, i.deactivated, i.invalid_rows, i.started_at,"
                " i.identities_resolved_at, sum(c.created)::int AS created, sum(c.updated)::int AS updated"
                " FROM imports i JOIN import_counters c ON c.import_id = i.id"
                " WHERE i.tenant_id = 'bench-system' GROUP BY i.id ORDER BY i.id DESC LIMIT 1"
            )
        finally:
            await conn.close()
        self.result |= {f"migration_{key.removeprefix('system_')}": self.result[key] for key in _SYSTEM_KEYS}
        self.result |= kept
        # The one transaction that resolves the file's identities and writes the renames.
        resolved = (imp["identities_resolved_at"] - imp["started_at"]).total_seconds()
        self.result["migration_identities_seconds"] = round(resolved, 2)
        self.figures["migration"] = {
            key: imp[key] for key in ("email_changed", "created", "updated", "deactivated", "invalid_rows")
        }

    # ----------------------------------------------------------------- resync
    async def resync(self) -> None:
        """The system run's people again, 1% changed, sync, file → done (``resync.measure_resync``)."""
        await resync.measure_resync(self, _SYSTEM_KEYS)

    async def _timed_import(
        self, conn: Any, tenant: str, worker: Worker | None, path: Path | None = None, mode: str = "upsert"
    ) -> None:
        sampler = PgSampler(self.database_url) if self.args.profile_dir and worker else None
        spies: list[subprocess.Popen[bytes]] = []
        label = "system" if worker else "producer"
        producer_out = self.work_dir / f"{label}-producer.out"
        producer: subprocess.Popen[bytes] | None = None
        producer_seconds: float | None = None
        try:
            if worker is not None:
                self._logs = [producer_out, worker.log_path]
                worker.start()
                self.result["worker_boot_seconds"] = round(worker.boot_seconds, 2)
            limit = self.rows * 0.01 + 120
            # The tenant's imports before this one (updates imports into the system run's tenant).
            earlier = await conn.fetchval(
                "SELECT coalesce(max(id), 0) FROM imports WHERE tenant_id = $1", tenant
            )
            worker_pids = {worker.pid, *worker.children()} if worker is not None else set()
            cpu_before = cpu_seconds(worker_pids)
            self._wall_start = time.time()
            started = time.monotonic()
            with producer_out.open("wb") as out:
                producer = subprocess.Popen(
                    self.producer_command(tenant, path, mode),
                    cwd=ROOT,
                    # info: the producer's "import.dispatched" line dates the end of dispatch
                    # when it sends every row itself (the CLI logs warnings only by default).
                    env=subprocess_env(self.env, CLI_LOG_LEVEL=self.env.get("CLI_LOG_LEVEL") or "info"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            if sampler is not None:
                sampler.start()
            producer_rss_kib = 0
            producer_cpu_s = 0.0
            cpu_after = cpu_before
            done_seconds: float | None = None
            while producer_seconds is None or (worker is not None and done_seconds is None):
                if producer_seconds is None:
                    # The producer's own peak (VmHWM), read while it runs: wait4's
                    # ru_maxrss is at least this process's RSS when it spawned the
                    # producer (Linux keeps the pre-exec peak), and this process
                    # holds the resync's whole file by then (tests/bench/resync.py).
                    hwm = proc_status_kib(producer.pid, "VmHWM")
                    producer_rss_kib = max(producer_rss_kib, hwm or 0)
                    pid, status, usage = os.wait4(producer.pid, os.WNOHANG)
                    if pid:
                        producer_seconds = time.monotonic() - started
                        self._producer_exit_wall = time.time()
                        producer_cpu_s = usage.ru_utime + usage.ru_stime
                        producer.returncode = os.waitstatus_to_exitcode(status)
                        if producer.returncode != 0:
                            output = producer_out.read_text(errors="replace")[-2000:]
                            raise BenchError(f"the producer exited with {producer.returncode}: {output}")
                state = await conn.fetchval(
                    "SELECT state FROM imports WHERE tenant_id = $1 AND id > $2 ORDER BY id DESC LIMIT 1",
                    tenant,
                    earlier,
                )
                if worker is not None and state == "done" and done_seconds is None:
                    done_seconds = time.monotonic() - started
                    self._done_wall = time.time()
                    cpu_after = cpu_seconds(worker_pids)
                if state in FINAL_FAILURES:
                    raise BenchError(f"the import ended {state}; see {self.work_dir} (--keep-files)")
                if worker is not None and worker.process is not None and worker.process.poll() is not None:
                    raise BenchError(f"the worker died during the import; see {worker.log_path}")
                if (
                    self.args.profile_dir
                    and worker is not None
                    and not spies
                    and state == "running"
                    and time.monotonic() - started > self.args.profile_delay
                ):
                    spies = start_py_spy(
                        worker.children(), Path(self.args.profile_dir), self.args.profile_seconds, "worker"
                    )
                if time.monotonic() - started > limit:
                    pending = await conn.fetchval(
                        "SELECT count(*) FROM import_rows r JOIN imports i ON i.id = r.import_id"
                        " WHERE i.tenant_id = $1 AND r.status = 'pending'",
                        tenant,
                    )
                    raise BenchError(
                        f"the import did not finish within {limit:.0f}s (state {state},"
                        f" {pending} rows pending); see {self.work_dir} (--keep-files)"
                    )
                await asyncio.sleep(0.05)
            prefix = "producer" if worker is not None else "producer_alone"
            self.result |= {
                f"{prefix}_seconds": round(producer_seconds, 2),
                f"{prefix}_peak_rss_mb": kib_to_mb(producer_rss_kib),
            }
            if worker is None:
                self.result["producer_alone_rows_per_s"] = round(self.rows / producer_seconds)
            else:
                assert done_seconds is not None
                main_rss, child_rss = worker.peak_rss_mb()
                # Microseconds of CPU per row, file to done (the producer's from wait4).
                cpu_used = {kind: cpu_after[kind] - cpu_before[kind] for kind in cpu_before}
                cpu_used["producer"] = producer_cpu_s
                self.result["cpu_us_per_row"] = {
                    kind: round(seconds * 1e6 / self.rows) for kind, seconds in cpu_used.items()
                }
                self.result |= {
                    "system_rows_per_s": round(self.rows / done_seconds),
                    "system_seconds": round(done_seconds, 2),
                    "worker_peak_rss_mb": child_rss,
                    "worker_main_peak_rss_mb": main_rss,
                }
        finally:
            if producer is not None and producer_seconds is None and producer.returncode is None:
                producer.kill()
                producer.wait()
            if sampler is not None:
                self.figures["pg_activity"] = await sampler.stop()
            for spy in spies:
                try:
                    spy.wait(timeout=self.args.profile_seconds + 30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait()

    async def _import_figures(self, conn: Any, tenant: str, with_worker: bool) -> None:
        """What the database says about the import: phases, batches, outcome."""
        imp = await conn.fetchrow(
            "SELECT id, started_at, finished_at, total_rows, invalid_rows FROM imports"
            " WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1",
            tenant,
        )
        prefix = "producer" if with_worker else "producer_alone"
        # Reading, validating and COPYing the rows, until the import started (the
        # rest of the producer's time is creating the teams and enqueueing).
        self.result[f"{prefix}_record_seconds"] = round(imp["started_at"].timestamp() - self._wall_start, 2)
        if not with_worker:
            return
        batches = await conn.fetchrow(
            """SELECT count(*)::int AS batches, min(settled_at) AS first, max(settled_at) AS last
               FROM (SELECT settled_at FROM import_rows WHERE import_id = $1 AND settled_at IS NOT NULL
                     GROUP BY settled_at) b""",
            imp["id"],
        )
        settled = imp["total_rows"] - imp["invalid_rows"]
        span = (batches["last"] - batches["first"]).total_seconds() if batches["batches"] else 0.0
        self.result |= {
            # Rows settled per second between the first and the last batch's commit.
            "worker_rows_per_s": round(settled / span) if span else None,
            # Rows of one transaction share settled_at (now() is the transaction's start).
            "batches": batches["batches"],
            "mean_batch_rows": round(settled / batches["batches"], 1) if batches["batches"] else None,
            # Last row's commit → done seen (finished_at is the finalize transaction's start).
            "finalize_seconds": round(self._done_wall - batches["last"].timestamp(), 2)
            if batches["batches"]
            else None,
            "invalid_rows": imp["invalid_rows"],
        }
        if batches["batches"]:
            await self._phases(conn, imp, batches["first"].timestamp(), batches["last"].timestamp())
        figures = dict(await conn.fetchrow(TENANT_FIGURES, tenant))
        counts = await conn.fetchrow(
            "SELECT sum(created)::int AS created, sum(failed)::int AS failed FROM import_counters"
            " WHERE import_id = $1",
            imp["id"],
        )
        self.figures["system"] = figures | dict(counts)

    async def _phases(self, conn: Any, imp: Any, first_commit: float, last_commit: float) -> None:
        """The system run's phases, and its rate in each tenth of the rows (by settled_at).

        Phases overlap (rows settle while dispatch goes on): recording is the
        producer's start → ``started_at``; dispatch ``started_at`` → the last
        ``import.dispatched`` line logged for the import (producer or worker:
        the last row message sent), else the producer's exit; rows the first
        → the last batch's ``settled_at``; finalize that → ``done`` seen.
        """
        started = imp["started_at"].timestamp()
        dispatched = last_dispatched(self._logs, imp["id"])
        dispatch_end = dispatched if dispatched is not None else self._producer_exit_wall
        self.result["phases"] = {
            "recording_seconds": round(started - self._wall_start, 2),
            "dispatch_seconds": round(dispatch_end - started, 2),
            "dispatch_end": "log" if dispatched is not None else "producer_exit",
            "rows_seconds": round(last_commit - first_commit, 2),
            "finalize_seconds": round(self._done_wall - last_commit, 2),
        }
        # Decile k's rate: its rows over the time from the end of decile k-1 (the
        # first commit for the first) to its last row's settled_at: the ten spans
        # add up to the rows phase, so a slowdown as the import grows shows.
        deciles = await conn.fetch(
            """SELECT count(*)::int AS rows, extract(epoch FROM max(settled_at))::float8 AS last
               FROM (SELECT settled_at, ntile(10) OVER (ORDER BY settled_at, row_number) AS decile
                     FROM import_rows WHERE import_id = $1 AND settled_at IS NOT NULL) r
               GROUP BY decile ORDER BY decile""",
            imp["id"],
        )
        rates: list[int | None] = []
        previous = first_commit
        for decile in deciles:
            span = decile["last"] - previous
            rates.append(round(decile["rows"] / span) if span > 0 else None)
            previous = decile["last"]
        self.result["rate_by_decile"] = rates

    # ----------------------------------------------------------------- (b) naive
    async def naive(self) -> None:
        import asyncpg

        tenant = "bench-naive"
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1)", tenant)
            started = time.monotonic()
            teams: dict[str, int] = {}

            async def team_id(name: str) -> int:
                key = team_key(name)
                if key not in teams:
                    teams[key] = await conn.fetchval(NAIVE_TEAM, tenant, name)
                return teams[key]

            for person in people_from_csv(self.csv_path):
                _, email, first, last, title, role, language, location, primary, secondary = person
                primary_id = await team_id(primary) if primary else None
                secondary_ids = [await team_id(name) for name in secondary]
                await conn.execute(
                    NAIVE_PERSON,
                    tenant,
                    email,
                    first,
                    last,
                    title,
                    role,
                    language,
                    location,
                    primary_id,
                    [t for t in dict.fromkeys(secondary_ids) if t != primary_id],
                )
            # Fresh statistics before the set-based statement, as any script that
            # bulk-writes then joins must take: planned on the statistics of the
            # empty (or much smaller) tables, the managers' update ran for minutes
            # at 100% CPU at 200,000 rows. ANALYZE samples: well under a second.
            await conn.execute("ANALYZE people, teams")
            await conn.execute(NAIVE_TEAM_MANAGERS, tenant)
            elapsed = time.monotonic() - started
            self.figures["naive"] = dict(await conn.fetchrow(TENANT_FIGURES, tenant))
        finally:
            await conn.close()
        self.result |= {"naive_rows_per_s": round(self.rows / elapsed), "naive_seconds": round(elapsed, 2)}

    # ----------------------------------------------------------------- (c) copy
    async def copy(self) -> None:
        import asyncpg

        tenant = "bench-copy"
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1)", tenant)
            # The planner's JIT misfires on these one-off statements (its row guesses
            # for the fresh teams make the cost look huge): a second wasted per 20k rows.
            await conn.execute("SET jit = off")
            started = time.monotonic()
            await conn.execute(COPY_STAGING)
            await conn.copy_records_to_table(
                "bench_staging", records=people_from_csv(self.csv_path), columns=COPY_COLUMNS
            )
            copied = time.monotonic() - started
            # Each statement commits on its own (autocommit): the manager update then
            # does not re-check the foreign keys of rows this same transaction inserted.
            await conn.execute("ANALYZE bench_staging")
            await conn.execute(COPY_TEAMS, tenant)
            # Fresh statistics, as a set-based script would take: without them the
            # planner guesses a dozen teams and scans them all for every row.
            await conn.execute("ANALYZE teams")
            await conn.execute(COPY_PEOPLE, tenant)
            await conn.execute("ANALYZE people")
            await conn.execute(COPY_TEAM_MANAGERS, tenant)
            elapsed = time.monotonic() - started
            self.figures["copy"] = dict(await conn.fetchrow(TENANT_FIGURES, tenant))
        finally:
            await conn.close()
        self.result |= {
            "copy_rows_per_s": round(self.rows / elapsed),
            "copy_seconds": round(elapsed, 2),
            "copy_read_and_copy_seconds": round(copied, 2),
        }

    # ----------------------------------------------------------------- fairness
    async def fairness(self) -> None:
        """A small import of another tenant submitted while a large one runs: submit → done.

        The Procfile worker is booted; the large import (``--fairness-rows``) is
        submitted with the CLI and, once its CLI has returned and
        ``--fairness-settled`` of its rows have settled (it is under way, its
        rows queued), a 40-row import of another tenant is submitted the same
        way. Reported: the small import's seconds from its submit to ``done``,
        whether the large one was still running then, and the large one's own
        rate (rows / seconds, submit → done).
        """
        import asyncpg

        from producer.demo.sample import write_people_csv

        big_rows, small_rows = int(self.args.fairness_rows), FAIRNESS_SMALL_ROWS
        big_csv = write_people_csv(self.work_dir / "fair-big.csv", big_rows, seed=11)
        small_csv = write_people_csv(self.work_dir / "fair-small.csv", small_rows, seed=13)
        big_tenant, small_tenant = "bench-fair-big", "bench-fair-small"
        conn = await asyncpg.connect(self.database_url)
        worker = self.worker(procfile_command("worker"), "fairness")
        producers: list[subprocess.Popen[bytes]] = []
        try:
            worker.start()

            def submit(path: Path, tenant: str) -> None:
                out = (self.work_dir / f"fairness-{tenant}.out").open("wb")
                command = self.producer_command(tenant, path)
                producers.append(
                    subprocess.Popen(command, cwd=ROOT, env=subprocess_env(self.env), stdout=out, stderr=out)
                )

            async def state_of(tenant: str) -> tuple[str | None, int]:
                row = await conn.fetchrow(
                    """SELECT i.state, coalesce((SELECT sum(c.created + c.updated + c.unchanged + c.skipped
                                                          + c.failed)
                                                 FROM import_counters c WHERE c.import_id = i.id), 0)::int
                                         AS settled
                       FROM imports i WHERE i.tenant_id = $1 ORDER BY i.id DESC LIMIT 1""",
                    tenant,
                )
                return (row["state"], row["settled"]) if row else (None, 0)

            def check(tenant: str, state: str | None) -> None:
                if state in FINAL_FAILURES:
                    raise BenchError(f"the {tenant} import ended {state}; see {self.work_dir} (--keep-files)")
                if worker.process is not None and worker.process.poll() is not None:
                    raise BenchError(f"the worker died during the fairness run; see {worker.log_path}")

            limit = big_rows * 0.01 + 120
            big_started = time.monotonic()
            submit(big_csv, big_tenant)
            threshold = min(int(self.args.fairness_settled), big_rows // 2)
            while True:
                state, settled = await state_of(big_tenant)
                check(big_tenant, state)
                # Under way: rows settling, and the large import's CLI has
                # returned, i.e. it has queued all it queues at once (on a
                # loaded machine it may still be enqueueing well after its
                # first rows settle, and the small import would find fewer
                # rows ahead of it than it does once that is done).
                if (settled >= threshold and producers[0].poll() is not None) or state == "done":
                    break
                if time.monotonic() - big_started > limit:
                    raise BenchError(f"the large import settled {settled} rows in {limit:.0f}s")
                await asyncio.sleep(0.05)
            big_settled_at_submit = settled
            small_started, small_submitted_wall = time.monotonic(), time.time()
            submit(small_csv, small_tenant)
            small_seconds: float | None = None
            big_seconds: float | None = None
            big_state_when_small_done: str | None = None
            big_settled_when_small_done = 0
            while small_seconds is None or big_seconds is None:
                now = time.monotonic()
                if small_seconds is None:
                    state, _ = await state_of(small_tenant)
                    check(small_tenant, state)
                    if state == "done":
                        small_seconds, small_done_wall = now - small_started, time.time()
                        big_state_when_small_done, big_settled_when_small_done = await state_of(big_tenant)
                if big_seconds is None:
                    state, _ = await state_of(big_tenant)
                    check(big_tenant, state)
                    if state == "done":
                        big_seconds = now - big_started
                if now - big_started > limit:
                    raise BenchError(f"the fairness imports did not finish within {limit:.0f}s")
                await asyncio.sleep(0.05)
            # Where the small import's time went: the CLI (start, read, COPY),
            # its rows waiting in the shared queue and being applied, finalizing.
            phases = await conn.fetchrow(
                """SELECT extract(epoch FROM i.started_at)::float8 AS started,
                          extract(epoch FROM max(r.settled_at))::float8 AS settled
                   FROM imports i JOIN import_rows r ON r.import_id = i.id
                   WHERE i.tenant_id = $1 GROUP BY i.id""",
                small_tenant,
            )
        finally:
            worker.stop()
            for producer in producers:
                if producer.poll() is None:
                    producer.kill()
                producer.wait()
            await conn.close()
        self.result |= {
            "fairness_small_seconds": round(small_seconds, 2),
            "fairness_small_submit_to_started_seconds": round(phases["started"] - small_submitted_wall, 2),
            "fairness_small_started_to_rows_settled_seconds": round(phases["settled"] - phases["started"], 2),
            "fairness_small_rows_settled_to_done_seconds": round(small_done_wall - phases["settled"], 2),
            "fairness_big_rows": big_rows,
            "fairness_big_settled_at_submit": big_settled_at_submit,
            "fairness_big_state_when_small_done": big_state_when_small_done,
            "fairness_big_settled_when_small_done": big_settled_when_small_done,
            "fairness_big_seconds": round(big_seconds, 2),
            "fairness_big_rows_per_s": round(big_rows / big_seconds),
        }


def last_dispatched(logs: list[Path], import_id: int) -> float | None:
    """When the last ``import.dispatched`` line for the import was logged (epoch seconds), if any."""
    last: float | None = None
    for path in logs:
        with contextlib.suppress(OSError), path.open(errors="replace") as lines:
            for line in lines:
                if '"import.dispatched"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == "import.dispatched" and record.get("import_id") == import_id:
                    at = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
                    last = at if last is None else max(last, at)
    return last


# --------------------------------------------------------------------------- the run


async def create_database(url: str, settings: list[str]) -> None:
    import asyncpg

    import schema

    admin = await asyncpg.connect(server_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DB_NAME}"')
        for assignment in settings:
            name, _, value = assignment.partition("=")
            if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
                raise BenchError(f"not a PostgreSQL setting name: {name!r}")
            await admin.execute(f'ALTER DATABASE "{DB_NAME}" SET {name} = {_literal(value)}')
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await schema.migrate(conn)
    finally:
        await conn.close()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def drop_database() -> None:
    import asyncpg

    admin = await asyncpg.connect(server_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    finally:
        await admin.close()


def rabbitmq_vhost() -> str:
    return f"bulk-import-bench-{PID}"


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


def clear_namespace(redis_url: str) -> None:
    """Empty the bench's Redis namespace, and its RabbitMQ vhost's queues when it runs on RabbitMQ."""
    import redis

    if os.environ.get("BROKER_URL", "").startswith("amqp"):
        queues = rabbitmqctl("list_queues", "-p", rabbitmq_vhost(), "--no-table-headers", "name").split()
        for name in queues:
            rabbitmqctl("purge_queue", "-p", rabbitmq_vhost(), name)

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=NAMESPACE + ":*", count=1000))
        for first in range(0, len(keys), 1000):
            client.delete(*keys[first : first + 1000])
    finally:
        client.close()


def write_xlsx(csv_path: Path, xlsx_path: Path) -> Path:
    """The generated CSV's rows as an Excel workbook (openpyxl in write-only mode: flat memory)."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("People")
    with csv_path.open(newline="", encoding="utf-8") as rows:
        for row in csv.reader(rows):
            sheet.append(row)
    book.save(xlsx_path)
    return xlsx_path


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


# What a timed import writes into the result; updates keeps the system run's.
_SYSTEM_KEYS = ("system_rows_per_s", "system_seconds", "cpu_us_per_row", "producer_seconds")


def with_employee_ids(source: Path, target: Path) -> Path:
    """``source`` with an Employee ID for every person (row ``i``: ``E0000001`` and so on)."""
    with (
        source.open(newline="", encoding="utf-8") as inp,
        target.open("w", newline="", encoding="utf-8") as out,
    ):
        reader, writer = csv.reader(inp), csv.writer(out)
        header = next(reader)
        column = header.index("Employee ID")
        writer.writerow(header)
        for number, row in enumerate(reader, start=1):
            row += [""] * (len(header) - len(row))
            row[column] = f"E{number:07}"
            writer.writerow(row)
    return target


def migrate_domain(source: Path, target: Path, *, previous: bool) -> Path:
    """``source`` with every address moved to another domain; with ``previous``, a ``Previous
    email`` column holding the old address (how a file without ids says it is a rename)."""
    with (
        source.open(newline="", encoding="utf-8") as inp,
        target.open("w", newline="", encoding="utf-8") as out,
    ):
        reader, writer = csv.reader(inp), csv.writer(out)
        header = next(reader)
        email = header.index("Email")
        writer.writerow([*header, "Previous email"] if previous else header)
        for row in reader:
            row += [""] * (len(header) - len(row))
            old = row[email]
            local, _, domain = old.rpartition("@")
            row[email] = f"{local}@migrated.{domain}"
            writer.writerow([*row, old] if previous else row)
    return target


def retitle(source: Path, target: Path) -> Path:
    """``source`` with every person's job title changed (so an import of it updates everyone)."""
    with (
        source.open(newline="", encoding="utf-8") as inp,
        target.open("w", newline="", encoding="utf-8") as out,
    ):
        reader, writer = csv.reader(inp), csv.writer(out)
        header = next(reader)
        title = header.index("Job title")
        writer.writerow(header)
        for row in reader:
            row[title] = "Senior " + row[title] if row[title] else "Analyst"
            writer.writerow(row)
    return target


async def run(args: argparse.Namespace, broker: str = "redis") -> dict[str, Any]:
    # SIGTERM cancels the run, whose finally blocks stop the worker and drop the
    # database (Ctrl-C does the same through asyncio.run's own SIGINT handling).
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    database_url = with_database(server_url(), DB_NAME)
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    # This process and every process it starts: the bench database and namespace.
    os.environ |= {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_NAMESPACE": NAMESPACE,
        "LOG_FORMAT": os.environ.get("LOG_FORMAT") or "json",
        # RabbitMQ: a virtual host of the bench's own, made here, deleted at the end.
        "BROKER_URL": f"{RABBITMQ_SERVER}/{rabbitmq_vhost()}" if broker == "rabbitmq" else redis_url,
    }
    if broker == "rabbitmq":
        rabbitmqctl("add_vhost", rabbitmq_vhost())
        rabbitmqctl("set_permissions", "-p", rabbitmq_vhost(), "guest", ".*", ".*", ".*")
    for assignment in args.env:
        name, _, value = assignment.partition("=")
        os.environ[name] = value
    work_dir = Path(tempfile.mkdtemp(prefix=f"bulk-import-bench-{PID}-"))
    measurements = [m for m in MEASUREMENTS if m in args.only]
    if broker == "rabbitmq":
        measurements = [m for m in measurements if m not in REDIS_ONLY_MEASUREMENTS]
    bench: Bench | None = None
    created = False
    try:
        clear_namespace(redis_url)
        from producer.demo.sample import write_people_csv

        started = time.monotonic()
        csv_path = write_people_csv(work_dir / "people.csv", args.rows)
        if args.employee_ids:
            csv_path = with_employee_ids(csv_path, work_dir / "people-ids.csv")
        generated = time.monotonic() - started
        await create_database(database_url, args.db_setting)
        created = True
        bench = Bench(args, csv_path, work_dir, database_url, dict(os.environ))
        if args.format == "xlsx":
            bench.producer_path = write_xlsx(csv_path, work_dir / "people.xlsx")
        await bench.history()
        bench.result |= {
            "broker": broker,
            "format": args.format,
            "employee_ids": args.employee_ids,
            "rows": args.rows,
            "processes": args.processes,
            "threads": args.threads,
            "prefetch": int(os.environ.get("WORKER_PREFETCH") or 1000),
            "file_mb": round((bench.producer_path or csv_path).stat().st_size / 1024**2, 1),
            "generate_seconds": round(generated, 2),
        }
        for index, name in enumerate(measurements):
            print(f"bench: {name} ({args.rows} rows) ...", file=sys.stderr, flush=True)
            if name == "fairness" and index > 0:
                # A fresh database: a large import recorded after another large
                # one in the same database meets the producer's duplicate-e-mail
                # statement planned for one row (the statistics hold only the
                # earlier import), which takes minutes per thousand rows.
                await create_database(database_url, args.db_setting)
                await bench.history("fairness_history_seconds")
            if name == "producer":
                await bench.system(with_worker=False)
            else:
                await getattr(bench, name)()
            clear_namespace(redis_url)
        result = bench.result
        system = result.get("system_rows_per_s")
        result |= {
            "ratio_vs_naive": _ratio(system, result.get("naive_rows_per_s")),
            "ratio_vs_ceiling": _ratio(system, result.get("ceiling_msgs_per_s")),
            "ratio_vs_stock_ceiling": _ratio(system, result.get("stock_ceiling_msgs_per_s")),
            "ratio_vs_copy": _ratio(system, result.get("copy_rows_per_s")),
            "ratio_updates_vs_system": _ratio(result.get("updates_rows_per_s"), system),
            # A time ratio (the target: ≤ 0.2 at 100,000 rows with 1% changed).
            "ratio_resync_vs_system_seconds": _ratio(
                result.get("resync_seconds"), result.get("system_seconds")
            ),
            "checks": bench.figures,
        }
        if args.keep_db:
            result["database_url"] = database_url
        return result
    finally:
        try:
            clear_namespace(redis_url)
            if broker == "rabbitmq":
                rabbitmqctl("delete_vhost", rabbitmq_vhost())
        finally:
            if created and not args.keep_db:
                await drop_database()
            if args.keep_files:
                print(f"bench: files kept in {work_dir}", file=sys.stderr)
            else:
                shutil.rmtree(work_dir, ignore_errors=True)


# --------------------------------------------------------------------------- output


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(value: Any, suffix: str = "") -> str:
        if value is None:
            return "-"
        if isinstance(value, dict):
            return " · ".join(f"{key} {fmt(part)}" for key, part in value.items()) + suffix
        return (f"{value:,.0f}" if isinstance(value, int) or value >= 100 else f"{value}") + suffix

    title = (
        f"{result['rows']:,} rows, worker {result['processes']} processes × {result['threads']} threads"
        f" (prefetch {result['prefetch']})"
    )
    table = Table(title=title)
    table.add_column("measurement")
    table.add_column("seconds", justify="right")
    table.add_column("rows/s", justify="right")
    table.add_column("system ÷ this", justify="right")
    for label, seconds, rate, ratio in (
        ("system: producer + Procfile worker, file → done", "system_seconds", "system_rows_per_s", None),
        ("naive: serial INSERT … ON CONFLICT per row", "naive_seconds", "naive_rows_per_s", "ratio_vs_naive"),
        ("copy: COPY + set-based merges + managers", "copy_seconds", "copy_rows_per_s", "ratio_vs_copy"),
        ("ceiling: same worker, no-op actor", "ceiling_seconds", "ceiling_msgs_per_s", "ratio_vs_ceiling"),
        (
            "stock ceiling: stock dramatiq RedisBroker, no-op actor",
            "stock_ceiling_seconds",
            "stock_ceiling_msgs_per_s",
            "ratio_vs_stock_ceiling",
        ),
    ):
        if result.get(rate) is not None:
            shown = "1.00" if ratio is None else fmt(result.get(ratio))
            table.add_row(label, fmt(result.get(seconds)), fmt(result.get(rate)), shown)
    console = Console(width=max(Console().width, 100))
    console.print(table)
    details = Table(title="details", show_header=False)
    details.add_column("what")
    details.add_column("value", justify="right")
    for key, label, suffix in (
        ("producer_seconds", "producer: submit until it returned", " s"),
        ("producer_record_seconds", "producer: read + validate + COPY (until started)", " s"),
        ("producer_peak_rss_mb", "producer peak RSS", " MB"),
        ("producer_alone_seconds", "producer alone (no worker running)", " s"),
        ("producer_alone_record_seconds", "producer alone: read + validate + COPY", " s"),
        ("producer_alone_rows_per_s", "producer alone", " rows/s"),
        ("producer_alone_peak_rss_mb", "producer alone: peak RSS", " MB"),
        ("worker_peak_rss_mb", "worker process peak RSS (largest)", " MB"),
        ("worker_main_peak_rss_mb", "worker main process peak RSS", " MB"),
        ("ceiling_worker_peak_rss_mb", "no-op worker process peak RSS", " MB"),
        ("ceiling_acked_before_boot", "no-op: messages acknowledged before the clock started", ""),
        ("stock_ceiling_acked_before_boot", "stock no-op: messages acknowledged before the clock", ""),
        ("stock_ceiling_connection_errors", "stock no-op: Redis connection errors logged", ""),
        ("stock_ceiling_worker_peak_rss_mb", "stock no-op worker process peak RSS", " MB"),
        ("stock_enqueue_msgs_per_s", "stock actor.send, pipelined, alone", " msgs/s"),
        ("worker_rows_per_s", "worker: rows settled per second (first → last commit)", ""),
        ("cpu_us_per_row", "CPU µs per row, file → done", ""),
        ("batches", "worker: transactions", ""),
        ("mean_batch_rows", "worker: rows per transaction", ""),
        ("finalize_seconds", "last row → done (finalize: managers, invites)", " s"),
        ("enqueue_msgs_per_s", "pipelined enqueue alone (no-op messages)", " msgs/s"),
        ("ceiling_concurrent_msgs_per_s", "no-op: enqueue while consuming, to empty", " msgs/s"),
        ("enqueue_under_load_msgs_per_s", "pipelined enqueue while the no-op worker consumes", " msgs/s"),
        ("worker_boot_seconds", "worker boot", " s"),
        ("employee_ids", "the file has an Employee ID per person, matched by it", ""),
        ("updates_seconds", "updates: the people again, every title changed, file → done", " s"),
        ("updates_rows_per_s", "updates", " rows/s"),
        ("migration_seconds", "migration: every address to another domain, sync, file → done", " s"),
        ("migration_rows_per_s", "migration", " rows/s"),
        (
            "migration_identities_seconds",
            "migration: identities resolved and renamed (one transaction)",
            " s",
        ),
        ("resync_seconds", "resync: the people again, 1% changed, sync, file → done", " s"),
        ("resync_rows_per_s", "resync", " rows/s"),
        ("ratio_resync_vs_system_seconds", "resync ÷ system, seconds", "×"),
        ("resync_rows_span_seconds", "resync: first to last batch of the changed rows", " s"),
        ("resync_producer_peak_rss_mb", "resync: producer peak RSS", " MB"),
        ("history_rows", "history: rows of another tenant imported first (not counted)", ""),
        ("history_seconds", "history: worker start → done (not counted)", " s"),
        ("fairness_history_seconds", "history again, in fairness's fresh database", " s"),
        ("fairness_small_seconds", "fairness: 40-row import of another tenant, submit → done", " s"),
        ("fairness_small_submit_to_started_seconds", "fairness: small, submit → started (CLI, COPY)", " s"),
        ("fairness_small_started_to_rows_settled_seconds", "fairness: small, started → rows settled", " s"),
        ("fairness_small_rows_settled_to_done_seconds", "fairness: small import, rows settled → done", " s"),
        ("fairness_big_settled_at_submit", "fairness: large import's rows settled at that submit", ""),
        ("fairness_big_state_when_small_done", "fairness: large import's state when the small was done", ""),
        ("fairness_big_settled_when_small_done", "fairness: large import's rows settled then", ""),
        ("fairness_big_seconds", "fairness: large import, submit → done", " s"),
        ("fairness_big_rows_per_s", "fairness: large import", " rows/s"),
    ):
        if result.get(key) is not None:
            details.add_row(label, fmt(result[key], suffix))
    if details.row_count:
        console.print(details)
    print_phases(console, result)
    if result.get("checks"):
        console.print("checks (each tenant's people and managers):", result["checks"])


def print_phases(console: Any, result: dict[str, Any]) -> None:
    """The system run's phases (they overlap) and its rate by tenth of the rows."""
    from rich.table import Table

    phases = result.get("phases")
    if not phases:
        return
    dispatch_end = (
        "the last import.dispatched logged"
        if phases["dispatch_end"] == "log"
        else "the producer's exit (no import.dispatched line found)"
    )
    table = Table(title="system phases (they overlap: rows settle while dispatch goes on)")
    table.add_column("phase")
    table.add_column("from → to")
    table.add_column("seconds", justify="right")
    for name, span in (
        ("recording", "producer start → import started_at"),
        ("dispatch", f"started_at → {dispatch_end}"),
        ("rows", "first batch's settled_at → last batch's"),
        ("finalize", "last batch's settled_at → done seen"),
    ):
        table.add_row(name, span, f"{phases[name + '_seconds']}")
    console.print(table)
    rates = result.get("rate_by_decile") or []
    deciles = Table(title="rows/s by tenth of the rows (settled_at order)")
    for index in range(len(rates)):
        deciles.add_column(f"{index * 10}-{index * 10 + 10}%", justify="right")
    deciles.add_row(*("-" if rate is None else f"{rate:,}" for rate in rates))
    console.print(deciles)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Side-by-side throughput of the bulk import (see tests/bench/README.md)."
    )
    parser.add_argument("--rows", type=int, required=True, help="rows in the generated file")
    parser.add_argument(
        "--processes", type=int, default=int(os.environ.get("WORKER_PROCESSES") or 2), help="worker processes"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("WORKER_THREADS") or 128),
        help="threads per process",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "xlsx"),
        default="csv",
        help="the file the producer reads: the generated CSV, or the same rows as an xlsx workbook",
    )
    parser.add_argument(
        "--employee-ids",
        action="store_true",
        help="an Employee ID per person in the generated file, and people matched by it"
        " (set the system rate beside a run without it)",
    )
    parser.add_argument(
        "--broker",
        choices=("redis", "rabbitmq", "both"),
        default="redis",
        help="the broker (both: one after the other in this run, system rates side by side;"
        " the ceilings are Redis's only)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database")
    parser.add_argument("--keep-files", action="store_true", help="keep the file and the worker logs")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_MEASUREMENTS),
        help=f"comma-separated measurements among {', '.join(MEASUREMENTS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for this run's producer and workers (ROW_BATCH_SIZE=500, WORKER_PREFETCH=200, ...)",
    )
    parser.add_argument(
        "--db-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="ALTER DATABASE … SET for the bench database (plan_cache_mode=force_custom_plan, ...)",
    )
    parser.add_argument(
        "--fairness-rows",
        type=int,
        default=150_000,
        help="rows of the large import the fairness measurement runs beside (default %(default)s)",
    )
    parser.add_argument(
        "--fairness-settled",
        type=int,
        default=5_000,
        help="rows of the large import settled before the small one is submitted (default %(default)s)",
    )
    parser.add_argument(
        "--history-rows",
        type=int,
        default=5_000,
        help="rows of another tenant imported to done before anything is measured, 0 for none"
        " (default %(default)s)",
    )
    parser.add_argument(
        "--profile-dir", help="py-spy each worker process during the system run and sample pg_stat_activity"
    )
    parser.add_argument("--profile-seconds", type=int, default=10, help="py-spy duration (default 10)")
    parser.add_argument(
        "--profile-delay", type=float, default=3.0, help="seconds into the system run py-spy starts"
    )
    args = parser.parse_args(argv)
    args.only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(args.only) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(sorted(unknown))}: choose among {MEASUREMENTS}")
    if args.rows < 1 or args.processes < 1 or args.threads < 1:
        parser.error("--rows, --processes and --threads must be positive")
    if args.history_rows < 0:
        parser.error("--history-rows must be 0 (no history) or a number of rows")
    # The Procfile's worker line reads these.
    os.environ["WORKER_PROCESSES"], os.environ["WORKER_THREADS"] = str(args.processes), str(args.threads)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    brokers = ("redis", "rabbitmq") if args.broker == "both" else (args.broker,)
    results: list[dict[str, Any]] = []
    try:
        for broker in brokers:
            results.append(asyncio.run(run(args, broker)))
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("bench: interrupted (workers stopped, database dropped unless --keep-db)", file=sys.stderr)
        return 130
    for result in results:
        result["finished_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
        if args.json:
            print(json.dumps(result))
        else:
            print_table(result)
    if len(results) > 1 and not args.json:
        rates = ", ".join(f"{r['broker']} {r.get('system_rows_per_s')}" for r in results)
        print(f"system rows/s by broker (same run, {args.rows} rows): {rates}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
