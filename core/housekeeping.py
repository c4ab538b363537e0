"""A periodic pass for work the broker may have lost: one function, run by every worker process.

Redis carries work, not state: a delayed message can vanish with a Redis that
keeps nothing on disk, and a worker can die between committing a step and
sending the message that follows it. :func:`run_housekeeping` asks
PostgreSQL for invite batches that are overdue and releases them (a repeat
is harmless: sends are claimed), looks for stalled imports
(``core.recovery``), which it reports and resumes, sends again the overdue
webhook deliveries the broker holds no message for, records the batched
events of the SCIM imports done since (``core.webhooks.events``), starts the runs of the
sources' ticks that are due (``core.sources.ticks``: one run per tick however
many processes look) and sends again the runs whose message was lost, and forgets the values
imports replaced once they are older than ``UNDO_RETENTION_DAYS``
(``core.undo``). A session advisory lock lets one process at a time do it.
The worker runs it every ``HOUSEKEEPING_INTERVAL_S``
(``worker.middleware.housekeeping``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog

from core import invites, outbox, queues
from core.db import QUERIES
from core.recovery import resume_stalled_imports
from core.settings import Settings
from core.sources import ticks
from core.undo import purge_old_changes
from core.vocabulary import EventType
from core.webhooks import deliveries, events

TRY_HOUSEKEEPING_LOCK = QUERIES["try_housekeeping_lock"]
RELEASE_HOUSEKEEPING_LOCK = QUERIES["release_housekeeping_lock"]

log = structlog.get_logger(__name__)

# Any constant shared by the worker processes; pg_try_advisory_lock takes a bigint.
_HOUSEKEEPING_LOCK = 7_351_900_002


async def run_housekeeping(conn: Any, settings: Settings) -> int:
    """One pass: release overdue invite batches, resume stalled imports, re-send lost webhook
    deliveries, start the due source ticks; return how many of each."""
    if not await conn.fetchval(TRY_HOUSEKEEPING_LOCK, _HOUSEKEEPING_LOCK):
        return 0
    try:
        sends = await asyncio.to_thread(queues.held_messages, queues.INVITES)
        batch_ids = await invites.overdue_batches(
            conn, settings.invite_release_grace_s, settings.invite_claim_timeout_s, sends_queued=sends > 0
        )
        for batch_id in batch_ids:
            log.warning("housekeeping.releasing_overdue_batch", invite_batch=batch_id)
            await invites.release_batch(
                conn, batch_id, outbox.send_invites, retry_after_s=settings.invite_claim_timeout_s
            )
        stalled = await resume_stalled_imports(conn, settings.stall_after_s)
        purged = await purge_old_changes(conn, settings.undo_retention_days)
        if purged:
            log.info("housekeeping.undo_values_purged", people=purged, days=settings.undo_retention_days)
        lost = await resend_lost_deliveries(conn, settings)
        reported = await report_scim_imports(conn)
        ticked = await run_source_ticks(conn, settings, datetime.now(UTC))
        return len(batch_ids) + stalled + lost + reported + ticked
    finally:
        await conn.execute(RELEASE_HOUSEKEEPING_LOCK, _HOUSEKEEPING_LOCK)


async def run_source_ticks(conn: Any, settings: Settings, now: datetime) -> int:
    """Start the runs of the source ticks due at ``now``, and send again the runs whose message was
    lost; return how many messages were sent."""
    started = await ticks.claim_due_ticks(conn, now)
    overdue = await ticks.lost_runs(conn, now, settings.source_overdue_grace_s)
    held = await asyncio.to_thread(queues.runs_with_held_messages) if overdue else set()
    lost = [r for r in overdue if held is not None and r not in held and r not in started]
    if lost:
        log.warning("housekeeping.resending_source_runs", runs=len(lost))
    if started or lost:
        await outbox.send_source_runs([*started, *lost])
    return len(started) + len(lost)


async def report_scim_imports(conn: Any) -> int:
    """Record the batched events of the SCIM imports done since the last pass, send their deliveries."""
    anchors = await events.record_scim_batches(conn)
    for import_id in anchors:
        await outbox.send_new_deliveries(conn, import_id, EventType.IMPORT_COMPLETED)
    return len(anchors)


async def resend_lost_deliveries(conn: Any, settings: Settings) -> int:
    """Send again the overdue webhook deliveries the broker holds no message for; return how many."""
    overdue = await deliveries.overdue_deliveries(conn, settings.webhook_overdue_grace_s)
    if not overdue:
        return 0
    held = await asyncio.to_thread(queues.deliveries_with_held_messages)
    lost = [d for d in overdue if held is not None and d not in held]
    if lost:
        log.warning("housekeeping.resending_deliveries", deliveries=len(lost))
        await outbox.send_deliveries(lost)
    return len(lost)
