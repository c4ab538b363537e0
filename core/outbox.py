"""Every message the system sends, by actor name, without importing the actors.

A module that needs to move an import on (the producer, ``resume``, the
housekeeping, an actor handing over to the next step) calls a function here;
the actors themselves live in ``worker.actors``, which only the worker
process imports. Each function names its actor and queue once; a unit test
checks them against the declared actors. Sends are blocking Redis calls, so
each runs off the event loop.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import dramatiq
import structlog

from core import imports, queues
from core.settings import get_settings
from core.webhooks import deliveries

log = structlog.get_logger(__name__)

# A dispatcher that found the row queue full looks again this much later.
DISPATCH_PAUSE_MS = 1_000
# A dispatcher that found its import at IMPORT_MAX_IN_FLIGHT tops it up again
# this much later: short, so the import's rows never run out while it waits
# (the delayed message reaches a worker up to a second or so after it is due:
# the consumers of the delay queue and of "imports" poll that often when idle).
TOP_UP_PAUSE_MS = 250

# (actor name, queue) of every message sent from here.
UPSERT_ROW = ("upsert_row", queues.ROWS)
DISPATCH_IMPORT = ("dispatch_import", queues.IMPORTS)
FINALIZE_IMPORT = ("finalize_import", queues.IMPORTS)
SWEEP_MISSING_PEOPLE = ("sweep_missing_people", queues.IMPORTS)
RELEASE_INVITE_BATCH = ("release_invite_batch", queues.INVITE_SCHEDULES)
SEND_INVITE = ("send_invite", queues.INVITES)
DELIVER_WEBHOOK = ("deliver_webhook", queues.WEBHOOKS)
RUN_SOURCE = ("run_source", queues.SOURCES)
SENT_ACTORS = (
    UPSERT_ROW,
    DISPATCH_IMPORT,
    FINALIZE_IMPORT,
    SWEEP_MISSING_PEOPLE,
    RELEASE_INVITE_BATCH,
    SEND_INVITE,
    DELIVER_WEBHOOK,
    RUN_SOURCE,
)


def _send(target: tuple[str, str], args: tuple[Any, ...], delay_ms: int | None = None) -> None:
    actor_name, queue = target
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=queue, actor_name=actor_name, args=args, kwargs={}, options={}
    )
    queues.current_broker().enqueue(message, delay=delay_ms)


def send_finalize_sync(import_id: int) -> None:
    """Ask for the import's finalizing step (managers, then sweep or done; blocking)."""
    _send(FINALIZE_IMPORT, (import_id,))


async def send_finalize(import_id: int) -> None:
    """Ask for the import's finalizing step, off the event loop."""
    await asyncio.to_thread(send_finalize_sync, import_id)


async def send_sweep(import_id: int) -> None:
    """Ask the sweeper to deactivate everyone missing from a sync import's file."""
    await asyncio.to_thread(_send, SWEEP_MISSING_PEOPLE, (import_id,))


async def send_dispatch(import_id: int, after: int = 0, delay_ms: int | None = None) -> None:
    """Ask a worker to send the import's pending rows after row ``after``."""
    await asyncio.to_thread(_send, DISPATCH_IMPORT, (import_id, after), delay_ms)


def send_rows_sync(import_id: int, row_numbers: list[int]) -> None:
    """One ``upsert_row`` message per row, pipelined (blocking)."""
    queues.enqueue_many(UPSERT_ROW[1], UPSERT_ROW[0], [(import_id, row) for row in row_numbers])


async def send_rows(import_id: int, row_numbers: list[int]) -> None:
    """One ``upsert_row`` message per row, pipelined, off the event loop."""
    await asyncio.to_thread(send_rows_sync, import_id, row_numbers)


async def row_queue_room() -> int:
    """How many more row messages the queue may take (``MAX_QUEUE_BACKLOG``)."""
    return get_settings().max_queue_backlog - await asyncio.to_thread(queues.unacked_messages, queues.ROWS)


async def dispatch_rows(conn: Any, import_id: int, after: int = 0) -> imports.Dispatched:
    """Send an import's pending rows after ``after``, within bounds, and whatever comes next.

    Used by every caller that dispatches (the producer, resume, the next
    import of a tenant, the continuations): the import keeps at most
    ``IMPORT_MAX_IN_FLIGHT`` rows sent and unsettled, and the row queue at
    most ``MAX_QUEUE_BACKLOG`` messages. When either stops it, a
    ``dispatch_import`` message picks up from where this stopped a moment
    later; when nothing was pending, the finalizing step.
    """
    settings = get_settings()
    cap = settings.import_max_in_flight or None
    done = await imports.dispatch_pending_rows(
        conn, import_id, send_rows, after=after, room=row_queue_room, cap=cap
    )
    if done.at_cap and done.sent == 0 and await in_flight_lost(conn, import_id, settings.stall_after_s):
        # The rows counted in flight have no message left (lost with Redis
        # keys, say) and would hold the import at its cap for ever, while this
        # continuation, being a message of the import, keeps housekeeping from
        # seeing it stalled: send them again from the first, as resume would.
        log.warning("import.dispatch_restarted", import_id=import_id, after=after)
        done = await imports.dispatch_pending_rows(conn, import_id, send_rows, room=row_queue_room, cap=cap)
    if done.resume_after is not None:
        delay = TOP_UP_PAUSE_MS if done.at_cap else DISPATCH_PAUSE_MS
        await send_dispatch(import_id, done.resume_after, delay_ms=delay)
    elif done.claimed:
        await send_finalize(import_id)
    return done


async def in_flight_lost(conn: Any, import_id: int, stall_after_s: float) -> bool:
    """True when the import's in-flight rows are lost: idle that long, no row message held."""
    if await imports.idle_seconds(conn, import_id) < stall_after_s:
        return False
    held = await asyncio.to_thread(queues.imports_with_held_messages, (queues.ROWS,))
    return held is not None and import_id not in held


def schedule_invite_batch_sync(batch_id: int, send_at: datetime) -> None:
    """The batch's delayed message, due at ``send_at`` (blocking)."""
    delay_ms = int((send_at - datetime.now(UTC)).total_seconds() * 1000)
    delay = min(delay_ms, queues.MAX_DELAY_MS) if delay_ms > 0 else None
    _send(RELEASE_INVITE_BATCH, (batch_id,), delay)


async def schedule_invite_batch(batch_id: int, send_at: datetime) -> None:
    """The batch's delayed message, due at ``send_at`` (a hop at most ``MAX_DELAY_MS`` ahead)."""
    await asyncio.to_thread(schedule_invite_batch_sync, batch_id, send_at)


async def send_invites(invite_ids: list[int]) -> None:
    """One ``send_invite`` message per invite, pipelined."""
    arguments = [(invite_id,) for invite_id in invite_ids]
    await asyncio.to_thread(queues.enqueue_many, SEND_INVITE[1], SEND_INVITE[0], arguments)


async def send_invite_later(invite_id: int, delay_ms: int) -> None:
    """The invite's send again in ``delay_ms`` (over the shared rate; no retry used up)."""
    await asyncio.to_thread(_send, SEND_INVITE, (invite_id,), delay_ms)


async def send_deliveries(delivery_ids: list[int]) -> None:
    """One ``deliver_webhook`` message per delivery, due now, pipelined."""
    arguments = [(delivery_id,) for delivery_id in delivery_ids]
    await asyncio.to_thread(queues.enqueue_many, DELIVER_WEBHOOK[1], DELIVER_WEBHOOK[0], arguments)


async def send_new_deliveries(conn: Any, import_id: int, event_type: str) -> None:
    """The first messages of the deliveries an import's event just recorded (committed).

    A broker that does not answer costs the import nothing: the deliveries
    wait in PostgreSQL, and housekeeping sends them once they are overdue.
    """
    delivery_ids = await deliveries.new_deliveries(conn, import_id, event_type)
    if not delivery_ids:
        return
    try:
        await send_deliveries(delivery_ids)
    except queues.BROKER_ERRORS as exc:
        log.warning("webhook.send_deferred", import_id=import_id, type=event_type, error=repr(exc))


async def send_new_run_deliveries(conn: Any, run_id: int, event_type: str) -> None:
    """The first messages of the deliveries a source run's event just recorded (committed)."""
    delivery_ids = await deliveries.new_run_deliveries(conn, run_id, event_type)
    if not delivery_ids:
        return
    try:
        await send_deliveries(delivery_ids)
    except queues.BROKER_ERRORS as exc:
        log.warning("webhook.send_deferred", source_run=run_id, type=event_type, error=repr(exc))


def send_source_runs_sync(run_ids: list[int]) -> None:
    """One ``run_source`` message per source run, due now (blocking)."""
    queues.enqueue_many(RUN_SOURCE[1], RUN_SOURCE[0], [(run_id,) for run_id in run_ids])


async def send_source_runs(run_ids: list[int]) -> None:
    """One ``run_source`` message per source run, due now, off the event loop."""
    await asyncio.to_thread(send_source_runs_sync, run_ids)


def schedule_source_run_sync(run_id: int, due: datetime) -> None:
    """The run's next attempt, a delayed message due at ``due`` (blocking)."""
    delay_ms = int((due - datetime.now(UTC)).total_seconds() * 1000)
    delay = min(delay_ms, queues.MAX_DELAY_MS) if delay_ms > 0 else None
    _send(RUN_SOURCE, (run_id,), delay)


def schedule_delivery_sync(delivery_id: int, due: datetime) -> None:
    """The delivery's next attempt, a delayed message due at ``due`` (blocking)."""
    delay_ms = int((due - datetime.now(UTC)).total_seconds() * 1000)
    delay = min(delay_ms, queues.MAX_DELAY_MS) if delay_ms > 0 else None
    _send(DELIVER_WEBHOOK, (delivery_id,), delay)


def send_delivery_later_sync(delivery_id: int, delay_ms: int) -> None:
    """The delivery's message again in ``delay_ms`` (every attempt slot was taken; blocking)."""
    _send(DELIVER_WEBHOOK, (delivery_id,), delay_ms)


async def schedule_delivery(delivery_id: int, due: datetime) -> None:
    """The delivery's next attempt, a delayed message due at ``due``, off the event loop."""
    await asyncio.to_thread(schedule_delivery_sync, delivery_id, due)
