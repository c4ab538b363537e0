"""Helpers for tests that import files: write a CSV, import it, wait for the end."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from core import imports, rows, undo
from core.columns import TEMPLATE_HEADERS
from core.intake.options import ImportOptions
from core.intake.reading import open_source
from core.intake.submit import ImportRequest, record_import, submit_import_async
from core.undo_plan import REPORT_HEADER
from core.vocabulary import Mode, Step
from producer.queries import QUERIES as PRODUCER_QUERIES
from producer.reports import FINAL_STATES, import_status, write_people

Row = Sequence[str]


def person(
    first: str,
    last: str,
    email: str,
    team: str = "",
    role: str = "",
    *,
    title: str = "",
    secondary: str = "",
    language: str = "",
    location: str = "",
    employee_id: str = "",
) -> list[str]:
    """A template row in the template's column order."""
    return [first, last, email, title, team, secondary, role, language, location, employee_id]


def write_csv(path: Path, rows: Sequence[Row], header: Sequence[str] = TEMPLATE_HEADERS) -> Path:
    """Write ``rows`` under ``header`` as a UTF-8 CSV."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


async def wait_final(conn: Any, import_id: int, timeout: float = 60) -> dict[str, Any]:
    """Poll the import until it reaches a final state; return its status."""
    deadline = time.monotonic() + timeout
    while True:
        status = await import_status(conn, import_id)
        if status["state"] in FINAL_STATES:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"import {import_id} still {status['state']} after {timeout}s: {status}")
        await asyncio.sleep(0.05)


def request_of(tenant: str, mode: str, options: dict[str, Any]) -> ImportRequest:
    """An ImportRequest from keyword arguments: the import's options, and the request's own fields
    (``idempotency_key``, ``filename``, ``token_id``)."""
    own = {name: options.pop(name) for name in ("idempotency_key", "filename", "token_id") if name in options}
    return ImportRequest(tenant=tenant, options=ImportOptions(mode=mode, **options), **own)


async def submit(path: Path, tenant: str, mode: str = "upsert", **options: Any) -> int:
    """Submit an import the way the CLI does."""
    return await submit_import_async(path, request_of(tenant, mode, options))


async def run_import(
    conn: Any, path: Path, tenant: str, mode: str = "upsert", **options: Any
) -> dict[str, Any]:
    """Submit an import and return its final status."""
    import_id = await submit(path, tenant, mode, **options)
    return await wait_final(conn, import_id)


async def export_rows(conn: Any, tenant: str) -> dict[str, dict[str, str]]:
    """The tenant's export, keyed by e-mail."""
    out = io.StringIO()
    await write_people(conn, tenant, out)
    out.seek(0)
    return {row["Email"]: row for row in csv.DictReader(out)}


async def apply_import(
    conn: Any,
    path: Path | BinaryIO,
    tenant: str,
    mode: str = "upsert",
    max_share: float = 1.0,
    before_finalize: Callable[[int], Awaitable[None]] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Import ``path`` as the worker would, without a broker; return each row's status and the sweep.

    ``options`` are the import's options (``blank_cells``, say) and the request's own fields.
    ``before_finalize`` runs (with the import's id) once the rows sent have settled, before
    the first finalizing step. ``recorded``: the rows settled when the file was recorded (the
    row numbers), ``messages``: the row messages the dispatches sent, ``reopened``: how many
    times finalizing sent rows back to the workers.
    """
    with open_source(path) as source:
        request = request_of(tenant, mode, options)
        import_id = await record_import(conn, request, source)
    recorded = await conn.fetch(
        "SELECT row_number FROM import_rows WHERE import_id = $1 AND person_version IS NOT NULL"
        " ORDER BY row_number",
        import_id,
    )
    assert await imports.start_next_import(conn, tenant) == import_id
    messages = reopened = 0
    pending: list[int] = []

    async def collect(_: int, batch: list[int]) -> None:
        pending.extend(batch)

    while True:
        pending.clear()
        await imports.dispatch_pending_rows(conn, import_id, collect)
        messages += len(pending)
        await rows.process_rows(conn, import_id, pending)
        await rows.claim_finalize(conn, import_id)
        if before_finalize is not None and not reopened:
            await before_finalize(import_id)
        step = await imports.finalize_import(conn, import_id)
        if step != Step.ROWS:
            break
        reopened += 1
    if step == Step.SWEEP:
        await imports.sweep_missing_people(conn, import_id, max_share)
    statuses = await conn.fetch(
        "SELECT row_number, status, errors FROM import_rows WHERE import_id = $1", import_id
    )
    imp = await conn.fetchrow("SELECT state, deactivated, admins_kept FROM imports WHERE id = $1", import_id)
    return {
        "id": import_id,
        "statuses": {r["row_number"]: r["status"] for r in statuses},
        "errors": {r["row_number"]: r["errors"] for r in statuses if r["errors"]},
        "recorded": [r["row_number"] for r in recorded],
        "messages": messages,
        "reopened": reopened,
        **dict(imp),
    }


async def start_undo(conn: Any, import_id: int) -> int:
    """Record and start the undo of an import without a broker, up to its first batch; its id."""
    tenant = await imports.tenant_of_import(conn, import_id)
    undo_id: int = await conn.fetchval(
        PRODUCER_QUERIES["insert_undo"], tenant, import_id, "undo", {"header": list(REPORT_HEADER)}, None
    )
    assert await imports.start_next_import(conn, tenant) == undo_id

    async def nothing(_: int, batch: list[int]) -> None:
        raise AssertionError(f"an undo has no rows to send, got {batch}")

    assert (await imports.dispatch_pending_rows(conn, undo_id, nothing)).claimed
    assert await imports.finalize_import(conn, undo_id) == Mode.UNDO
    return undo_id


async def apply_undo(
    conn: Any, import_id: int, batch_size: int = 2, retention_days: int = 30
) -> dict[str, Any]:
    """Undo an import as the workers would, without a broker, in batches of ``batch_size``.

    Returns the undo's status JSON. A small batch size makes a few people span several batches.
    """
    undo_id = await start_undo(conn, import_id)
    while await undo.run_undo(conn, undo_id, batch_size, retention_days, budget_s=0) == Step.MORE:
        pass
    return await import_status(conn, undo_id)
