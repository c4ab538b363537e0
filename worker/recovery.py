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
import json
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from worker.db import QUERIES

log = structlog.get_logger(__name__)

# The queues whose messages carry an import id as their first argument
# (row_gave_up carries the failed row message instead), and their delay queues.
IMPORT_QUEUES = ("rows", "rows.DQ", "imports", "imports.DQ")
# Beyond this many messages queued, we do not read them all to look for one
# import's: a backlog that deep is work in progress, not a stall.
SCAN_LIMIT = 200_000


@dataclass(frozen=True)
class Stall:
    """An unfinished import that has not moved for ``idle_s`` seconds."""

    import_id: int
    tenant_id: str
    state: str
    idle_s: int


def _import_of(message: bytes) -> int | None:
    try:
        args = json.loads(message).get("args") or []
    except (ValueError, AttributeError):
        return None
    first = args[0] if args else None
    if isinstance(first, dict):  # row_gave_up(message, retry_info)
        inner = first.get("args") or []
        first = inner[0] if inner else None
    return first if isinstance(first, int) else None


def queued_messages(client: Any, namespace: str, queue: str) -> int:
    """Messages the broker holds for ``queue``: ready, delayed, or in a worker's hands (blocking)."""
    return sum(int(client.hlen(f"{namespace}:{name}.msgs")) for name in (queue, queue + ".DQ"))


def imports_with_queued_work(client: Any, namespace: str) -> set[int] | None:
    """Ids of the imports the broker holds a message for (blocking Redis calls).

    None when the queues hold more than ``SCAN_LIMIT`` messages: too many to
    read, and a sign of work in progress rather than of a stall.
    """
    hashes = [f"{namespace}:{queue}.msgs" for queue in IMPORT_QUEUES]
    if sum(client.hlen(key) for key in hashes) > SCAN_LIMIT:
        return None
    found: set[int] = set()
    for key in hashes:
        for _, message in client.hscan_iter(key, count=1_000):
            import_id = _import_of(message)
            if import_id is not None:
                found.add(import_id)
    return found


async def find_stalled_imports(
    conn: asyncpg.Connection, client: Any, namespace: str, after_s: float
) -> list[Stall]:
    """The imports stalled now (see the module's docstring)."""
    candidates = await conn.fetch(QUERIES["stalled_import_candidates"], after_s)
    if not candidates:
        return []
    queued = await asyncio.to_thread(imports_with_queued_work, client, namespace)
    if queued is None:
        return []
    return [
        Stall(r["id"], r["tenant_id"], r["state"], r["idle_s"]) for r in candidates if r["id"] not in queued
    ]


async def start_and_dispatch(conn: asyncpg.Connection, tenant: str) -> int | None:
    """Start the tenant's next queued import, if it may, and send its rows."""
    from worker.actors import dispatch_rows
    from worker.imports import start_next_import

    started = await start_next_import(conn, tenant)
    if started is not None:
        await dispatch_rows(conn, started)
    return started


async def resend_unfinished(conn: asyncpg.Connection, import_id: int, state: str, tenant: str) -> str | None:
    """Re-send the messages a queued, running or finalizing import still needs.

    Returns what was done, or None for any other state (nothing to re-send here).
    """
    from worker.actors import dispatch_rows, finalize_import

    if state == "queued":
        started = await start_and_dispatch(conn, tenant)
        if started == import_id:
            return f"import {import_id} started"
        active = await conn.fetchval(QUERIES["active_import_of_tenant"], tenant)
        return f"import {import_id} is queued behind import {active} of {tenant}"
    if state == "running":
        dispatched = await dispatch_rows(conn, import_id)
        if dispatched.claimed:
            return f"import {import_id}: every row has settled; finalizing"
        more = " (the rest follow as the queue drains)" if dispatched.resume_after is not None else ""
        return f"import {import_id}: re-sent {dispatched.sent} unsettled rows{more}"
    if state == "finalizing":
        await asyncio.to_thread(finalize_import.send, import_id)
        return f"import {import_id}: finalizing step re-sent"
    return None


async def resume_stalled_imports(
    conn: asyncpg.Connection, client: Any, namespace: str, after_s: float
) -> int:
    """Report every stalled import and resume it; return how many there were."""
    stalls = await find_stalled_imports(conn, client, namespace, after_s)
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
