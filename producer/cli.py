"""The ``bulk-import`` command line: thin click commands over the producer,
the worker's lifecycle functions and the reports.

Every expected failure is a ``BulkImportError`` (or an unreachable service)
and ends as one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import asyncpg
import click
import redis

from producer.review import review_command
from producer.submit import INVITE_OPTIONS, MODES, ImportRequest
from producer.timezones import parse_send_at as _parse_send_at
from worker.errors import BulkImportError
from worker.logs import configure_logging, redact
from worker.settings import get_settings

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning expected failures into one line and an exit code."""
    settings = get_settings()
    try:
        return asyncio.run(coro)
    except BulkImportError as exc:
        _fail(str(exc), exc.exit_code)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # Local files (-o FILE): checked before the broader OSError below,
        # which means the database could not be reached.
        _fail(f"cannot use {exc.filename}: {exc.strerror}", 1)
    except asyncpg.UndefinedTableError:
        _fail("the database has no schema yet: run `bulk-import migrate` first", 1)
    except asyncpg.InvalidCatalogNameError:
        _fail(
            f"the database in DATABASE_URL ({redact(settings.database_url)}) does not exist:"
            " run `bulk-import migrate` to create it",
            1,
        )
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        _fail(f"cannot reach PostgreSQL at {redact(settings.database_url)}: {exc}", 1)
    except redis.exceptions.ConnectionError as exc:
        _fail(f"cannot reach Redis at {redact(settings.redis_url)}: {exc}", 1)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def async_command(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Turn an ``async def`` into a click callback run by :func:`run_async`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_async(fn(*args, **kwargs))

    return wrapper


def _emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text(data))


@click.group()
def main() -> None:
    """Bulk people import: review and import a CSV of people for a tenant."""
    settings = get_settings()
    configure_logging(settings.cli_log_level, settings.log_format)


@main.command()
@async_command
async def migrate() -> None:
    """Create the database if needed and apply schema migrations (idempotent)."""
    import schema
    from worker.db import connection, ensure_database

    settings = get_settings()
    if await ensure_database(settings.database_url):
        click.echo(f"created database {redact(settings.database_url)}")
    async with connection(settings.database_url) as conn:
        applied = await schema.migrate(conn)
    click.echo(
        "applied " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
        if applied
        else "schema is up to date"
    )


@main.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option("--example", is_flag=True, help="Add a few realistic rows to start from.")
def template(output: Path | None, example: bool) -> None:
    """Write the CSV template."""
    from producer.template import write_template

    if output is None:
        write_template(sys.stdout, example=example)
        return
    try:
        with output.open("w", newline="", encoding="utf-8") as out:
            write_template(out, example=example)
    except OSError as exc:
        _fail(f"cannot use {exc.filename}: {exc.strerror}", 1)
    click.echo(f"wrote {output}", err=True)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="The tenant the people belong to.")
@click.option("--mode", type=click.Choice(MODES), required=True)
@click.option("--invites", type=click.Choice(INVITE_OPTIONS), default="none", show_default=True)
@click.option("--send-at", help="With --invites at: ISO 8601 time; without an offset, the tenant's timezone.")
@click.option(
    "--allow-mass-deactivation",
    is_flag=True,
    help="Let a sync import deactivate more than the configured share.",
)
@click.option("--wait", is_flag=True, help="Show progress and return when the import has ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@async_command
async def run(
    file: Path,
    tenant: str,
    mode: str,
    invites: str,
    send_at: str | None,
    allow_mass_deactivation: bool,
    wait: bool,
    as_json: bool,
) -> None:
    """Start an import of FILE and print its id."""
    from producer.progress import wait_for_import
    from producer.reports import import_status
    from producer.submit import submit_import_async
    from worker.db import connection

    settings = get_settings()
    timezone = await _tenant_timezone(tenant) if send_at is not None else "UTC"
    request = ImportRequest(
        tenant=tenant,
        mode=mode,
        invites=invites,
        send_at=_parse_send_at(send_at, timezone),
        allow_mass_deactivation=allow_mass_deactivation,
        filename=file.name,
    )
    import_id = await submit_import_async(file, request, settings)
    if not wait:
        _emit({"id": import_id}, as_json, lambda d: str(d["id"]))
        return
    if not as_json:
        click.echo(f"import {import_id} started", err=True)
    status = await wait_for_import(settings.database_url, import_id, show=not as_json)
    async with connection(settings.database_url) as conn:
        status = await import_status(conn, import_id)
    _emit(status, as_json, _status_text)
    if status["state"] != "done":
        sys.exit(3 if status["state"] == "blocked" else 1)


def _status_text(status: dict[str, Any]) -> str:
    rows = status["rows"]
    lines = [
        f"import {status['id']} ({status['tenant']}, {status['mode']}): {status['state']}",
        f"  rows: {rows['total']} total, {rows['invalid']} invalid, {rows['created']} created, "
        f"{rows['updated']} updated, {rows['unchanged']} unchanged, {rows['skipped']} skipped, "
        f"{rows['failed']} failed, {rows['pending']} pending",
        f"  deactivated: {status['deactivated']}",
    ]
    if status["state"] == "blocked":
        lines.append(
            f"  blocked: the sweep would deactivate {status['would_deactivate']} people,"
            " over the allowed share;"
            f" approve with `bulk-import resume {status['id']} --allow-mass-deactivation` or cancel it"
        )
    if status["admins_kept"]:
        lines.append(f"  admins missing from the file, kept active: {status['admins_kept']}")
    if rows["invalid"] or rows["failed"]:
        lines.append(f"  see the rejected rows with `bulk-import errors {status['id']}`")
    if status["error"]:
        lines.append(f"  error: {status['error']}")
    return "\n".join(lines)


@main.command()
@click.argument("import_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@async_command
async def status(import_id: int, as_json: bool) -> None:
    """Show an import's state and counts."""
    from producer.reports import import_status
    from worker.db import connection

    async with connection(get_settings().database_url) as conn:
        data = await import_status(conn, import_id)
    _emit(data, as_json, _status_text)


@main.command()
@click.argument("import_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@async_command
async def errors(import_id: int, output: Path | None) -> None:
    """Write the rows that were rejected or failed, with reasons, as CSV."""
    from producer.reports import write_failed_rows
    from worker.db import connection

    async with connection(get_settings().database_url) as conn:
        if output is None:
            await write_failed_rows(conn, import_id, sys.stdout)
        else:
            with output.open("w", newline="", encoding="utf-8") as out:
                count = await write_failed_rows(conn, import_id, out)
            click.echo(f"wrote {count} rows to {output}", err=True)


@main.command()
@click.option("--tenant", required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@async_command
async def export(tenant: str, output: Path | None) -> None:
    """Write everyone of the tenant as CSV (template columns, status, manager, invite)."""
    from producer.reports import write_people
    from worker.db import connection

    async with connection(get_settings().database_url) as conn:
        if output is None:
            await write_people(conn, tenant, sys.stdout)
        else:
            with output.open("w", newline="", encoding="utf-8") as out:
                count = await write_people(conn, tenant, out)
            click.echo(f"wrote {count} people to {output}", err=True)


@main.command()
@click.argument("import_id", type=int)
@async_command
async def cancel(import_id: int) -> None:
    """Stop an import: pending rows are not applied and no sweep runs."""
    from producer.control import cancel_import

    click.echo(await cancel_import(get_settings(), import_id))


@main.command()
@click.argument("import_id", type=int)
@click.option(
    "--allow-mass-deactivation", is_flag=True, help="Approve the sweep a blocked sync import held back."
)
@async_command
async def resume(import_id: int, allow_mass_deactivation: bool) -> None:
    """Re-send what an import has not finished (after a lost Redis or a crash)."""
    from producer.control import resume_import

    click.echo(await resume_import(get_settings(), import_id, allow_mass_deactivation))


@main.command()
@click.option("--rows", default=2_000, show_default=True, help="People in the generated file.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Where to write the files.")
@click.option("--embedded", is_flag=True, help="Use throw-away PostgreSQL and Redis even if others answer.")
def demo(rows: int, workdir: Path | None, embedded: bool) -> None:
    """Run the main job end to end on a generated file (embedded services if none answer)."""
    from producer.demo import run_demo

    try:
        run_demo(rows, workdir, embedded=embedded)
    except BulkImportError as exc:
        _fail(str(exc), exc.exit_code)


@main.group()
def invites() -> None:
    """Invitation e-mails."""


@invites.command("send")
@click.option("--tenant", required=True)
@click.option("--import", "import_id", type=int, help="Only the invites of this import.")
@click.option("--send-at", help="ISO 8601 time; without an offset, the tenant's timezone. Default: now.")
@async_command
async def invites_send(tenant: str, import_id: int | None, send_at: str | None) -> None:
    """Send, or schedule, the tenant's pending invites."""
    from producer.control import send_pending_invites

    settings = get_settings()
    moment = _parse_send_at(send_at, await _tenant_timezone(tenant)) if send_at else None
    click.echo(await send_pending_invites(settings, tenant, import_id, moment))


async def _tenant_timezone(tenant: str) -> str:
    from producer.timezones import tenant_timezone
    from worker.db import connection

    async with connection(get_settings().database_url) as conn:
        return await tenant_timezone(conn, tenant)


@main.group()
def tenant() -> None:
    """Tenants: name, timezone (for times without an offset), default language."""


@tenant.command("set")
@click.argument("tenant_id")
@click.option("--name", help="Shown in invitation e-mails.")
@click.option("--timezone", help="IANA name, e.g. Europe/Paris.")
@click.option("--language", help="Default language of its people (ISO 639-1, e.g. fr).")
@async_command
async def tenant_set(tenant_id: str, name: str | None, timezone: str | None, language: str | None) -> None:
    """Create or change a tenant."""
    from producer.control import update_tenant

    row = await update_tenant(get_settings(), tenant_id, name, timezone, language)
    click.echo(json.dumps(row))


@main.group()
def token() -> None:
    """Bearer tokens of the HTTP API (service tokens per tenant, operator tokens)."""


@token.command("create")
@click.option("--tenant", help="The tenant the token acts for (a service token).")
@click.option("--operator", is_flag=True, help="A token for operators: every tenant.")
@click.option("--label", help="Who or what uses it, for your records.")
@async_command
async def token_create(tenant: str | None, operator: bool, label: str | None) -> None:
    """Make a token; the token itself is printed last, on stdout, and only once."""
    from producer.tokens import create_token, describe
    from worker.db import connection

    if operator == (tenant is not None):
        raise BulkImportError("give either --tenant T (a service token) or --operator")
    async with connection(get_settings().database_url) as conn:
        new = await create_token(conn, tenant, label)
    click.echo(describe(new), err=True)
    click.echo(new.secret)


@token.command("revoke")
@click.argument("token_id", type=int)
@async_command
async def token_revoke(token_id: int) -> None:
    """Revoke a token at once (by the id `token create` printed)."""
    from producer.tokens import revoke_token
    from worker.db import connection

    async with connection(get_settings().database_url) as conn:
        click.echo(await revoke_token(conn, token_id))


main.add_command(review_command)
