"""An import's life at the command line.

``run``, ``status``, ``errors``, ``export``, ``cancel`` and ``resume``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import click

from core.db import connection
from core.intake.options import ImportOptions
from core.intake.submit import ImportRequest, submit_import_async
from core.settings import get_settings
from core.vocabulary import ImportState
from producer.cli.options import import_options
from producer.cli.running import async_command, emit
from producer.cli.undo import undo_status_text
from producer.control import cancel_import, resume_import
from producer.progress import wait_for_import
from producer.reports import import_status, write_failed_rows, write_people


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", required=True, help="The tenant the people belong to.")
@import_options
@click.option("--wait", is_flag=True, help="Show progress and return when the import has ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@async_command
async def run(file: Path, tenant: str, options: ImportOptions, wait: bool, as_json: bool) -> None:
    """Start an import of FILE (CSV, or an xlsx, ods or xls workbook) and print its id."""
    settings = get_settings()
    request = ImportRequest(tenant=tenant, options=options, filename=file.name)
    import_id = await submit_import_async(file, request, settings)
    if not wait:
        emit({"id": import_id}, as_json, lambda d: str(d["id"]))
        return
    if not as_json:
        click.echo(f"import {import_id} started", err=True)
    status = await wait_for_import(settings.database_url, import_id, show=not as_json)
    async with connection(settings.database_url) as conn:
        status = await import_status(conn, import_id)
    emit(status, as_json, _status_text)
    if status["state"] != ImportState.DONE:
        sys.exit(3 if status["state"] == ImportState.BLOCKED else 1)


def _status_text(status: dict[str, Any]) -> str:
    if status["undo"] is not None:
        return undo_status_text(status)
    rows = status["rows"]
    lines = [
        f"import {status['id']} ({status['tenant']}, {status['mode']}, blank cells {status['blank_cells']}):"
        f" {status['state']}",
        f"  rows: {rows['total']} total, {rows['invalid']} invalid, {rows['created']} created, "
        f"{rows['updated']} updated, {rows['unchanged']} unchanged, {rows['skipped']} skipped, "
        f"{rows['failed']} failed, {rows['pending']} pending",
        f"  deactivated: {status['deactivated']}",
    ]
    if rows["email_changed"]:
        lines.insert(
            2, f"  e-mail addresses changed: {rows['email_changed']} (people matched by {status['match_by']})"
        )
    if status["invites_to_old_address"]:
        lines.append(
            f"  {status['invites_to_old_address']} of them had their invitation sent to their old address;"
            f" `bulk-import invites send --tenant {status['tenant']} --resend-renamed` sends it again"
        )
    if status["state"] == ImportState.BLOCKED:
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


@click.command()
@click.argument("import_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@async_command
async def status(import_id: int, as_json: bool) -> None:
    """Show an import's state and counts."""
    async with connection(get_settings().database_url) as conn:
        data = await import_status(conn, import_id)
    emit(data, as_json, _status_text)


async def _write_csv(output: Path | None, noun: str, write: Callable[[TextIO], Awaitable[int]]) -> None:
    """A report as CSV on stdout, or in ``output`` with a count of what it holds on stderr."""
    if output is None:
        await write(sys.stdout)
        return
    with output.open("w", newline="", encoding="utf-8") as out:
        count = await write(out)
    click.echo(f"wrote {count} {noun} to {output}", err=True)


@click.command()
@click.argument("import_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@async_command
async def errors(import_id: int, output: Path | None) -> None:
    """Write the rows that were rejected or failed, with reasons, as CSV."""
    async with connection(get_settings().database_url) as conn:
        await _write_csv(output, "rows", lambda out: write_failed_rows(conn, import_id, out))


@click.command()
@click.option("--tenant", required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@async_command
async def export(tenant: str, output: Path | None) -> None:
    """Write everyone of the tenant as CSV (template columns, status, manager, invite)."""
    async with connection(get_settings().database_url) as conn:
        await _write_csv(output, "people", lambda out: write_people(conn, tenant, out))


@click.command()
@click.argument("import_id", type=int)
@async_command
async def cancel(import_id: int) -> None:
    """Stop an import: pending rows are not applied and no sweep runs."""
    click.echo(await cancel_import(get_settings(), import_id))


@click.command()
@click.argument("import_id", type=int)
@click.option(
    "--allow-mass-deactivation", is_flag=True, help="Approve the sweep a blocked sync import held back."
)
@async_command
async def resume(import_id: int, allow_mass_deactivation: bool) -> None:
    """Re-send what an import has not finished (after a lost Redis or a crash)."""
    click.echo(await resume_import(get_settings(), import_id, allow_mass_deactivation))
