"""A SCIM write is an import: rows of the template's columns, recorded and applied as a file's are.

:func:`write_rows` writes the rows as a CSV in memory, records it with
:func:`core.intake.submit.record_import` (mode ``upsert``, origin ``scim``,
match by e-mail with a ``Previous email`` column for renames, every column
chosen explicitly so that the tenant's remembered choices and key neither
apply nor learn anything), starts it (or queues it behind the tenant's
running import) and waits, at most ``SCIM_WAIT_S``, for it to end. Its rows go
through the row actor and its end through ``finalize_import``: the same
validation, identity rules, update rule, teams, managers, undo records,
events and webhooks (one per import, not one per write of a Bulk) as a file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from core import outbox
from core.columns import COLUMNS_BY_NAME
from core.errors import FileRejected
from core.imports import start_next_import
from core.intake.options import ImportOptions
from core.intake.reading import open_source
from core.intake.submit import ImportRequest, record_import
from core.vocabulary import FINAL_STATES, ImportOrigin, ImportState, MatchKey, Mode, RowStatus
from producer.queries import QUERIES
from producer.web.scim.errors import ScimError
from producer.web.scim.resources import ROW_COLUMNS, UserRow

SCIM_IMPORT_STATE = QUERIES["scim_import_state"]
SCIM_IMPORT_ROWS = QUERIES["scim_import_rows"]

FIRST_ROW = 2  # the CSV's header is line 1


@dataclass(frozen=True)
class RowOutcome:
    """What one row did: its status, the person it reached, and the reason when it was refused."""

    status: str
    person_id: int | None
    message: str | None


def _csv(rows: Sequence[UserRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([COLUMNS_BY_NAME[name].header for name in ROW_COLUMNS])
    for row in rows:
        writer.writerow([row.cells.get(name, "") for name in ROW_COLUMNS])
    return out.getvalue().encode("utf-8")


async def _wait(pool: asyncpg.Pool, import_id: int, wait_s: float) -> str:
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        state: str = await pool.fetchval(SCIM_IMPORT_STATE, import_id)
        if state in FINAL_STATES or time.monotonic() >= deadline:
            return state
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.1)


async def write_rows(
    pool: asyncpg.Pool,
    tenant: str,
    token_id: int,
    rows: Sequence[UserRow],
    what: str,
    wait_s: float,
) -> list[RowOutcome]:
    """Import ``rows`` for ``tenant`` and return each row's outcome, in order.

    Raises ScimError 503 (with ``Retry-After``) when the import has not ended
    within ``wait_s`` seconds: it goes on, and a retry finds its work done.
    """
    options = ImportOptions(
        mode=Mode.UPSERT,
        match_by=MatchKey.EMAIL,
        mapping={COLUMNS_BY_NAME[name].header: name for name in ROW_COLUMNS},
    )
    request = ImportRequest(
        tenant=tenant,
        options=options,
        filename=what,
        token_id=token_id,
        origin=ImportOrigin.SCIM,
        row_flags={FIRST_ROW + i: row.flags for i, row in enumerate(rows) if row.flags},
    )
    async with pool.acquire() as conn:
        try:
            with open_source(io.BytesIO(_csv(rows))) as source:
                import_id = await record_import(conn, request, source)
        except FileRejected as exc:
            raise ScimError(400, str(exc), "invalidValue") from None
        started = await start_next_import(conn, tenant)
        if started is not None:
            await outbox.dispatch_rows(conn, started)
    state = await _wait(pool, import_id, wait_s)
    if state not in FINAL_STATES:
        raise ScimError(
            503,
            f"import {import_id} has not ended within {wait_s:g} s (state {state}); it goes on:"
            " send the request again later, it will find its work done",
            headers={"Retry-After": "5"},
        )
    if state != ImportState.DONE:
        raise ScimError(500, f"import {import_id} ended {state}; nothing may have been applied")
    found = {r["row_number"]: r for r in await pool.fetch(SCIM_IMPORT_ROWS, import_id)}
    outcomes = []
    for i in range(len(rows)):
        record: Any = found.get(FIRST_ROW + i)
        errors = (record["errors"] if record else None) or []
        message = "; ".join(str(e.get("message")) for e in errors) or None
        status = record["status"] if record else RowStatus.FAILED
        outcomes.append(RowOutcome(status, record["person_id"] if record else None, message))
    return outcomes


def raise_for(outcome: RowOutcome) -> int:
    """The person a row reached, or the SCIM error of a refused row."""
    if outcome.status in (RowStatus.CREATED, RowStatus.UPDATED, RowStatus.UNCHANGED) and outcome.person_id:
        return outcome.person_id
    message = outcome.message or f"the row ended {outcome.status}"
    if "is the address of" in message or ("cannot be" in message and "employee id" in message):
        raise ScimError(409, message, "uniqueness")
    if "never changes" in message:
        raise ScimError(400, message, "mutability")
    raise ScimError(400, message, "invalidValue")
