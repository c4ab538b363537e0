"""``bulk-import demo``: the main job end to end on a generated file.

Uses the configured services, else the local defaults, else embedded
PostgreSQL and Redis started for the occasion; migrates; starts the worker
with the ``Procfile``'s own ``worker:`` line; imports a generated file in
upsert mode; then a changed copy in sync mode (some people gone, some titles
changed); and prints the counts and a few exported rows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

import schema
from core.db import connection, ensure_database
from core.intake.options import ImportOptions
from core.intake.submit import ImportRequest, submit_import_async
from core.logs import redact
from core.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings, configured_url, use_services
from core.vocabulary import Mode
from producer.demo.embedded import local_services
from producer.demo.sample import write_people_csv
from producer.progress import wait_for_import
from producer.reports import import_status, write_people
from producer.web.tokens import create_token

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def procfile_command(process: str, procfile: Path = PROJECT_ROOT / "Procfile") -> str:
    """The command of the Procfile's line for ``process`` (``worker``, ``web``)."""
    for line in procfile.read_text(encoding="utf-8").splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise click.ClickException(f"{procfile} has no {process}: line")


@contextmanager
def running_worker(log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The Procfile's worker, running until the block ends (then stopped gracefully)."""
    with _running("worker", log_path, "worker.pool.opened", WORKER_PROCESSES="1") as process:
        yield process


@contextmanager
def running_web(log_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The Procfile's web process on ``port``, until the block ends."""
    with _running("web", log_path, "api.started", PORT=str(port)) as process:
        yield process


@contextmanager
def _running(name: str, log_path: Path, ready: str, **defaults: str) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for key, value in defaults.items():
        env.setdefault(key, value)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["sh", "-c", "exec " + procfile_command(name)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while ready not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"the {name} process did not start; see {log_path}")
            time.sleep(0.1)
        yield process
    finally:
        # dramatiq's main process forwards SIGTERM to its worker processes once.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _prepare_database(settings: Settings) -> None:
    await ensure_database(settings.database_url)
    async with connection(settings.database_url) as conn:
        await schema.migrate(conn)


async def _import(settings: Settings, path: Path, tenant: str, mode: Mode) -> dict[str, object]:
    import_id = await submit_import_async(
        path, ImportRequest(tenant=tenant, options=ImportOptions(mode=mode), filename=path.name), settings
    )
    click.echo(
        f"\n$ bulk-import run {path.name} --tenant {tenant} --mode {mode} --wait   (import {import_id})"
    )
    await wait_for_import(settings.database_url, import_id)
    async with connection(settings.database_url) as conn:
        return await import_status(conn, import_id)


async def _export_head(settings: Settings, tenant: str, lines: int) -> str:
    out = io.StringIO()
    async with connection(settings.database_url) as conn:
        await write_people(conn, tenant, out)
    out.seek(0)
    rows = list(csv.reader(out))
    return "\n".join(", ".join(row) for row in rows[: lines + 1])


def _summary(status: dict[str, object]) -> str:
    rows = status["rows"]
    assert isinstance(rows, dict)
    return (
        f"  state {status['state']}: {rows['total']} rows, {rows['created']} created, "
        f"{rows['updated']} updated, {rows['unchanged']} unchanged, {rows['invalid']} invalid, "
        f"{status['deactivated']} deactivated"
    )


def run_demo(
    rows: int, workdir: Path | None, *, embedded: bool = False, serve: bool = False, port: int = 8000
) -> None:
    """Run the whole demo; raises on any failure.

    ``embedded`` starts throw-away PostgreSQL and Redis even when others answer.
    ``serve`` keeps the worker and the web process (on ``port``) up after the
    imports, for the admins' pages, until Ctrl-C.
    """
    with (
        _stopping_on_sigterm(),
        local_services(
            configured_url("DATABASE_URL"),
            configured_url("REDIS_URL"),
            default_database_url=DEFAULT_DATABASE_URL,
            default_redis_url=DEFAULT_REDIS_URL,
            force_embedded=embedded,
        ) as urls,
    ):
        # A RabbitMQ BROKER_URL is used as it is (nothing embeds RabbitMQ);
        # otherwise the broker is the Redis above.
        broker_url = configured_url("BROKER_URL") or ""
        rabbitmq = broker_url if broker_url.lower().startswith("amqp") else ""
        settings = use_services(urls.database_url, urls.redis_url, rabbitmq)
        where = ", ".join(urls.embedded) if urls.embedded else "none"
        click.echo(f"PostgreSQL {urls.database_url}\nRedis      {urls.redis_url}\n(embedded: {where})")
        if rabbitmq:
            click.echo(f"Broker     RabbitMQ {redact(rabbitmq)}")
        asyncio.run(_prepare_database(settings))
        folder = Path(workdir or tempfile.mkdtemp(prefix="bulk-import-demo-"))
        folder.mkdir(parents=True, exist_ok=True)
        tenant = time.strftime("demo-%Y%m%d-%H%M%S")
        first = write_people_csv(folder / "people.csv", rows)
        # The second file: 2% of people have left; the sync sweep deactivates them.
        gone = frozenset(range(7, rows, 50))
        second = write_people_csv(folder / "people-sync.csv", rows, skip=gone)
        click.echo(f"\nGenerated {first} ({rows} people in teams of 12, each with a manager)")
        with running_worker(folder / "worker.log"):
            click.echo(_summary(asyncio.run(_import(settings, first, tenant, Mode.UPSERT))))
            click.echo(_summary(asyncio.run(_import(settings, first, tenant, Mode.UPSERT))))
            click.echo("  (the same file again: nothing changes)")
            click.echo(_summary(asyncio.run(_import(settings, second, tenant, Mode.SYNC))))
            click.echo(f"  ({len(gone)} people were missing from {second.name}: deactivated, not deleted)")
            click.echo(f"\n$ bulk-import export --tenant {tenant}   (first rows)")
            click.echo(asyncio.run(_export_head(settings, tenant, 6)))
            click.echo(f"\nFiles and the logs are in {folder}")
            token = asyncio.run(_admin_token(settings, tenant))
            url = f"http://127.0.0.1:{port}/admin"
            if not serve:
                click.echo(
                    f"\nThe admins' pages: {url}, once the web process runs (`bulk-import demo --serve`)"
                )
                click.echo(f"Admin token of {tenant}: {token}")
                if urls.embedded:
                    click.echo("(the embedded services stop with this command: use --serve to try the pages)")
                return
            with running_web(folder / "web.log", port):
                click.echo(f"\nThe admins' pages are up: open {url}")
                click.echo(f"Sign in with the admin token of {tenant}: {token}")
                click.echo("The worker and the web process run until Ctrl-C.")
                _wait_for_interrupt()


async def _admin_token(settings: Settings, tenant: str) -> str:
    async with connection(settings.database_url) as conn:
        return (await create_token(conn, tenant, "demo admin", admin=True)).secret


@contextmanager
def _stopping_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds the demo as Ctrl-C does: web, worker, then services and their files.

    Python's default for SIGTERM is to die on the spot, leaving the worker and the
    web process running and the embedded services' scratch files on disk. A
    second SIGTERM is ignored while the first one's unwinding runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set on the main thread
        return

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("\nStopping the web process and the worker.")
