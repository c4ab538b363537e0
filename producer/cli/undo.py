"""``bulk-import undo``: preview or start the undo of a finished import."""

from __future__ import annotations

import sys
from typing import Any

import click

from core.db import connection
from core.settings import get_settings
from core.vocabulary import ImportState
from producer.cli.running import async_command, emit
from producer.control import preview_undo, undo_import
from producer.progress import wait_for_import
from producer.reports import import_status

# The preview's text shows this many of the lines it cannot restore (--json: up to 1,000).
SHOWN_LINES = 20


def preview_text(preview: dict[str, Any]) -> str:
    """The dry run for people: what the undo would do, and who it would not restore and why."""
    lines = [
        f"undoing import {preview['import']} ({preview['tenant']}) would:",
        f"  restore {preview['restored']} people it updated, deactivate {preview['deactivated']} it created,"
        f" reactivate {preview['reactivated']} it deactivated",
        f"  give back {preview['emails_restored']} e-mail addresses it changed",
        f"  cancel {preview['invites_cancelled']} unsent invites;"
        f" {preview['invites_sent']} already sent (an e-mail cannot be unsent)",
        f"  keep {preview['kept']} values changed since",
    ]
    if preview["values_purged"]:
        lines.append(
            f"  the values it replaced are kept {preview['retention_days']} days (UNDO_RETENTION_DAYS)"
            " and it ended before that: the people it updated keep their values"
        )
    if preview["teams_created"]:
        lines.append(f"  teams it created, left in place: {', '.join(preview['teams_created'])}")
    total = preview["not_restored_total"]
    if total:
        lines.append(f"  not restored ({total}):")
        for line in preview["not_restored"][:SHOWN_LINES]:
            row = f" (row {line['row']})" if line["row"] is not None else ""
            what = f"{line['field']}: {line['now']!r} " if line["field"] else ""
            lines.append(f"    {line['email'] or '-'}{row} {what}- {line['reason']}")
        if total > SHOWN_LINES:
            lines.append(f"    ... and {total - SHOWN_LINES} more (--json lists up to 1,000)")
    lines.append(f"  run it with `bulk-import undo {preview['import']}`")
    return "\n".join(lines)


def undo_status_text(status: dict[str, Any]) -> str:
    """An undo's state and counts, for ``status`` and ``undo --wait``."""
    counts = status["undo"]
    lines = [
        f"undo {status['id']} of import {status['undoes']} ({status['tenant']}): {status['state']}",
        f"  restored {counts['restored']}, deactivated {counts['deactivated']},"
        f" reactivated {counts['reactivated']}, kept because changed since {counts['kept']}",
        f"  e-mail addresses given back {counts['emails_restored']}",
        f"  invites cancelled {counts['invites_cancelled']}, already sent {counts['invites_sent']};"
        f" teams left with nobody {counts['teams_left']}",
    ]
    if counts["not_restored"]:
        lines.append(
            f"  what was not restored and why ({counts['not_restored']} lines):"
            f" `bulk-import errors {status['id']}`"
        )
    if status["error"]:
        lines.append(f"  error: {status['error']}")
    return "\n".join(lines)


@click.command()
@click.argument("import_id", type=int)
@click.option("--dry-run", is_flag=True, help="Show what the undo would do; change nothing.")
@click.option("--wait", is_flag=True, help="Return when the undo has ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@async_command
async def undo(import_id: int, dry_run: bool, wait: bool, as_json: bool) -> None:
    """Undo a finished import: deactivate whom it created, restore whom it updated or deactivated."""
    settings = get_settings()
    if dry_run:
        emit(await preview_undo(settings, import_id), as_json, preview_text)
        return
    undo_id, created, message = await undo_import(settings, import_id)
    if not wait:
        emit({"id": undo_id, "created": created, "message": message}, as_json, lambda d: d["message"])
        return
    if not as_json:
        click.echo(message, err=True)
    await wait_for_import(settings.database_url, undo_id, show=not as_json)
    async with connection(settings.database_url) as conn:
        status = await import_status(conn, undo_id)
    emit(status, as_json, undo_status_text)
    if status["state"] != ImportState.DONE:
        sys.exit(1)
