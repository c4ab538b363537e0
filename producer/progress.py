"""``run --wait``: follow an import until it ends, with a progress bar.

Polls the import's status in PostgreSQL (the source of truth) twice a second;
the bar counts settled rows against valid rows and shows rows per second.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.db import connection
from producer.reports import FINAL_STATES, import_status

POLL_SECONDS = 0.5


def _settled(status: dict[str, Any]) -> tuple[int, int]:
    rows = status["rows"]
    valid = rows["total"] - rows["invalid"]
    return valid - rows["pending"], valid


async def wait_for_import(database_url: str, import_id: int, *, show: bool = True) -> dict[str, Any]:
    """Return the import's status once it is done, failed, cancelled or blocked."""
    console = Console(file=sys.stderr)
    progress = Progress(
        TextColumn("[bold]{task.fields[state]:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8} rows/s"),
        TimeElapsedColumn(),
        console=console,
        disable=not show,
        transient=False,
    )
    async with connection(database_url) as conn:
        with progress:
            status = await import_status(conn, import_id)
            done, valid = _settled(status)
            task = progress.add_task("import", total=max(valid, 1), state=status["state"], rate="-")
            loop = asyncio.get_running_loop()
            started, first_done = loop.time(), done
            while status["state"] not in FINAL_STATES:
                await asyncio.sleep(POLL_SECONDS)
                status = await import_status(conn, import_id)
                done, valid = _settled(status)
                elapsed = loop.time() - started
                rate = f"{(done - first_done) / elapsed:,.0f}" if elapsed > 0 else "-"
                progress.update(task, completed=done, total=max(valid, 1), state=status["state"], rate=rate)
            progress.update(task, completed=done, state=status["state"])
    return status
