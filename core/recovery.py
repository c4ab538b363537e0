"""Finding and resuming imports that stopped moving.

PostgreSQL holds every import's truth; Redis only carries the messages that
move it on. When those messages are gone (a Redis that lost its data, a worker
killed between committing a step and sending the next one's message), the
import sits unfinished with nothing queued for it. An import is *stalled* when
it is queued (and may start), running or finalizing, has made no progress for
``STALL_AFTER_S``, and the broker holds no message of it, ready, delayed or
in a worker's hands. ``resend_unfinished`` re-sends what the database says is
left, which every actor takes idempotently; ``bulk-import resume`` and the
workers' housekeeping both use it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from core import outbox, queues
from core.db import QUERIES
from core.imports import start_next_import
from core.vocabulary import ImportState

STALLED_IMPORT_CANDIDATES = QUERIES["stalled_import_candidates"]
ACTIVE_IMPORT_OF_TENANT = QUERIES["active_import_of_tenant"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Stall:
    """An unfinished import that has not moved for ``idle_s`` seconds."""

    import_id: int
    tenant_id: str
    state: ImportState
    idle_s: int


async def find_stalled_imports(conn: asyncpg.Connection, after_s: float) -> list[Stall]:
    """The imports stalled now (see the module's docstring)."""
    candidates = await conn.fetch(STALLED_IMPORT_CANDIDATES, after_s, None)
    if not candidates:
        return []
    queued = await asyncio.to_thread(queues.imports_with_held_messages)
    if queued is None:
        return []
    return [
        Stall(r["id"], r["tenant_id"], ImportState(r["state"]), r["idle_s"])
        for r in candidates
        if r["id"] not in queued
    ]


async def stalled_since(
    conn: asyncpg.Connection, after_s: float, import_id: int | None = None
) -> dict[int, datetime]:
    """When each import idle for ``after_s`` seconds last moved (only ``import_id``'s, when given).

    What ``status`` and the dashboard report: an import that should be moving
    and is not, whatever the broker holds (with no worker running, its
    messages wait in Redis and it is stalled all the same).
    """
    rows = await conn.fetch(STALLED_IMPORT_CANDIDATES, after_s, import_id)
    return {row["id"]: row["since"] for row in rows}


async def start_and_dispatch(conn: asyncpg.Connection, tenant: str) -> int | None:
    """Start the tenant's next queued import, if it may, and send its rows."""
    started = await start_next_import(conn, tenant)
    if started is not None:
        await outbox.dispatch_rows(conn, started)
    return started


async def resend_unfinished(
    conn: asyncpg.Connection, import_id: int, state: ImportState, tenant: str
) -> str | None:
    """Re-send the messages a queued, running or finalizing import still needs.

    Returns what was done, or None for any other state (nothing to re-send here).
    """
    if state == ImportState.QUEUED:
        started = await start_and_dispatch(conn, tenant)
        if started == import_id:
            return f"import {import_id} started"
        active = await conn.fetchval(ACTIVE_IMPORT_OF_TENANT, tenant)
        return f"import {import_id} is queued behind import {active} of {tenant}"
    if state == ImportState.RUNNING:
        dispatched = await outbox.dispatch_rows(conn, import_id)
        if dispatched.claimed:
            return f"import {import_id}: every row has settled; finalizing"
        more = " (the rest follow as the queue drains)" if dispatched.resume_after is not None else ""
        return f"import {import_id}: re-sent {dispatched.sent} unsettled rows{more}"
    if state == ImportState.FINALIZING:
        await outbox.send_finalize(import_id)
        return f"import {import_id}: finalizing step re-sent"
    return None


async def resume_stalled_imports(conn: asyncpg.Connection, after_s: float) -> int:
    """Report every stalled import and resume it; return how many there were."""
    stalls = await find_stalled_imports(conn, after_s)
    for stall in stalls:
        log.warning(
            "import.stalled",
            import_id=stall.import_id,
            tenant=stall.tenant_id,
            state=stall.state,
            idle_s=stall.idle_s,
        )
        done = await resend_unfinished(conn, stall.import_id, stall.state, stall.tenant_id)
        log.warning("import.resumed", import_id=stall.import_id, action=done)
    return len(stalls)
