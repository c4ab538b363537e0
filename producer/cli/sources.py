"""The ``source`` group: a tenant's scheduled sources (``add``, ``list``, ``test``, ``run``,
``approve``, ``pause``, ``resume``, ``remove``) and ``new-key`` for ``SOURCE_SECRET_KEY``."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from core.db import connection
from core.intake.options import ImportOptions
from core.settings import get_settings
from core.sources import runs, store, vault
from core.sources.store import HostKeyToConfirm, NewSource
from core.vocabulary import RunOutcome
from producer.cli.options import source_options
from producer.cli.running import async_command, fail
from producer.sources import run_now, wait_run

# A run's exit code with --wait, as `run --wait` ends an import: blocked 3, failed 1.
EXIT_OF_OUTCOME = {
    RunOutcome.IMPORTED: 0,
    RunOutcome.UNCHANGED: 0,
    RunOutcome.BLOCKED: 3,
    RunOutcome.FAILED: 1,
}


@click.group()
def source() -> None:
    """Imports that run themselves: a tenant's SFTP or HTTPS sources, pulled on a schedule."""


def _header(value: str | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    name, colon, text = value.partition(":")
    if not colon or not name.strip() or not text.strip():
        fail(f"--header {value!r}: write it as 'Name: value', e.g. 'Authorization: Bearer …'", 2)
    return name.strip(), text.strip()


def _line(shown: dict[str, Any]) -> str:
    last = shown["last_run"]
    state = (
        "paused"
        if shown["paused"]
        else (f"next {shown['next_run_at']}" if shown["next_run_at"] else "manual")
    )
    ran = f"last run {last['id']}: {last['outcome'] or 'under way'}" if last else "never run"
    schedule = shown["schedule"] or "no schedule"
    return f"{shown['id']}  {shown['name']}  {shown['url']}  [{schedule}; {state}; {ran}]"


@source.command("add")
@click.option("--tenant", required=True)
@click.option("--name", required=True, help="What the admins' pages call it (unique per tenant).")
@click.option("--url", required=True, help="sftp://USER@HOST:PORT/PATH-OR-GLOB or https://HOST/PATH")
@click.option("--key", "key_file", type=click.File("r"), help="SFTP: the private key file to log in with.")
@click.option(
    "--password-stdin", is_flag=True, help="SFTP: read the password from stdin (never an argument)."
)
@click.option("--header", "header", help="HTTPS: a header sent with each fetch, 'Name: value' (a secret).")
@click.option("--host-key", help="SFTP: the server's key fingerprint you expect (SHA256:…).")
@click.option("--accept-host-key", is_flag=True, help="SFTP: pin whatever key the server presents now.")
@click.option(
    "--schedule", help="Cron in the tenant's timezone ('0 3 * * *') or 'every N hours'; none: by hand."
)
@source_options
@click.option("--json", "as_json", is_flag=True)
@async_command
async def source_add(
    tenant: str,
    name: str,
    url: str,
    key_file: Any,
    password_stdin: bool,
    header: str | None,
    host_key: str | None,
    accept_host_key: bool,
    schedule: str | None,
    options: ImportOptions,
    as_json: bool,
) -> None:
    """Save a source; without --host-key or --accept-host-key it prints the SFTP server's fingerprint
    and saves nothing (exit 4)."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    header_name, header_value = _header(header)
    secrets = vault.Secrets(
        password=password or None,
        private_key=key_file.read() if key_file else None,
        header_value=header_value,
    )
    new = NewSource(
        tenant=tenant,
        name=name,
        url=url,
        secrets=secrets,
        header_name=header_name,
        host_key=host_key,
        accept_host_key=accept_host_key,
        schedule=schedule,
        options=options,
    )
    settings = get_settings()
    async with connection(settings.database_url) as conn:
        try:
            shown = await store.add_source(conn, new, settings, datetime.now(UTC))
        except HostKeyToConfirm as unconfirmed:
            click.echo(f"{unconfirmed}", err=True)
            click.echo(
                json.dumps({"host_key": unconfirmed.fingerprint, "saved": False})
                if as_json
                else unconfirmed.fingerprint
            )
            sys.exit(unconfirmed.exit_code)
    click.echo(json.dumps(shown, indent=2) if as_json else f"source {shown['id']} saved: {_line(shown)}")


@source.command("list")
@click.option("--tenant", help="One tenant's (default: every tenant's).")
@click.option("--json", "as_json", is_flag=True)
@async_command
async def source_list(tenant: str | None, as_json: bool) -> None:
    """The sources with their schedule and last run (never their secrets)."""
    async with connection(get_settings().database_url) as conn:
        shown = await store.list_sources(conn, tenant)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
    else:
        for one in shown:
            click.echo(_line(one))


@source.command("test")
@click.argument("source_id", type=int)
@async_command
async def source_test(source_id: int) -> None:
    """Log in and resolve the path (or GET the URL), fetching nothing: exit 0 when all is well."""
    settings = get_settings()
    async with connection(settings.database_url) as conn:
        click.echo(await store.test_source(conn, None, source_id, settings))


def _told(run: dict[str, Any]) -> str:
    outcome = run["outcome"]
    if outcome == RunOutcome.IMPORTED:
        return f"run {run['id']}: imported {run['file']} as import {run['import_id']}"
    if outcome is None:
        return f"run {run['id']}: under way (attempt {run['attempts']})" + (
            f": {run['reason']}" if run["reason"] else ""
        )
    return f"run {run['id']}: {outcome}" + (f": {run['reason']}" if run["reason"] else "")


async def _ran(run: dict[str, Any], new: bool, wait: bool, as_json: bool) -> None:
    if not new:
        click.echo(f"run {run['id']} of this source is already under way", err=True)
    if wait:
        run = await wait_run(get_settings(), run["id"])
    click.echo(json.dumps(run, indent=2) if as_json else _told(run))
    if run["outcome"] is not None:
        code = EXIT_OF_OUTCOME[RunOutcome(run["outcome"])]
        if code:
            sys.exit(code)


@source.command("run")
@click.argument("source_id", type=int)
@click.option(
    "--wait", is_flag=True, help="Return once the run has its outcome (exit 0, 3 blocked, 1 failed)."
)
@click.option("--json", "as_json", is_flag=True)
@async_command
async def source_run(source_id: int, wait: bool, as_json: bool) -> None:
    """One run now, on the workers: imported (with the import), unchanged, blocked (why) or failed."""
    run, new = await run_now(get_settings(), None, source_id)
    await _ran(run, new, wait, as_json)


@source.command("approve")
@click.argument("run_id", type=int)
@click.option("--wait", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@async_command
async def source_approve(run_id: int, wait: bool, as_json: bool) -> None:
    """Import the file the sweep guard blocked a run on, deactivating whom it would (a new run)."""
    run, new = await run_now(get_settings(), None, None, approve=run_id)
    await _ran(run, new, wait, as_json)


async def _change(source_id: int, action: str) -> None:
    now = datetime.now(UTC)
    async with connection(get_settings().database_url) as conn:
        tenant = (await store.get_source(conn, None, source_id))["tenant"]
        change = {"pause": store.pause_source, "resume": store.resume_source, "remove": store.remove_source}
        await change[action](conn, tenant, source_id, now)
        shown = await store.get_source(conn, tenant, source_id) if action != "remove" else None
    click.echo(f"source {source_id} removed" if shown is None else f"source {source_id}: {_line(shown)}")


@source.command("pause")
@click.argument("source_id", type=int)
@async_command
async def source_pause(source_id: int) -> None:
    """No more scheduled runs until resumed."""
    await _change(source_id, "pause")


@source.command("resume")
@click.argument("source_id", type=int)
@async_command
async def source_resume(source_id: int) -> None:
    """Scheduled runs again, from the next tick after now."""
    await _change(source_id, "resume")


@source.command("remove")
@click.argument("source_id", type=int)
@async_command
async def source_remove(source_id: int) -> None:
    """Never run again; its secret erased; its runs and imports stay in the history."""
    await _change(source_id, "remove")


@source.command("runs")
@click.argument("source_id", type=int)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@async_command
async def source_runs(source_id: int, limit: int) -> None:
    """The source's latest runs, newest first, as JSON lines."""
    async with connection(get_settings().database_url) as conn:
        tenant = (await store.get_source(conn, None, source_id))["tenant"]
        for run in await runs.runs_of_source(conn, tenant, source_id, limit):
            click.echo(json.dumps(run))


@source.command("new-key")
def source_new_key() -> None:
    """Print a fresh key for SOURCE_SECRET_KEY (to set on every process; put it first to rotate)."""
    click.echo(vault.new_key())
