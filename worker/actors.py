"""The dramatiq actors: thin shells that decode a message, call a plain async
function from ``worker.rows`` / ``worker.imports`` and send what comes next.

Queues: ``rows`` carries one message per import row; ``imports`` carries the
few per-import steps (dispatch, finalize, sweep), kept apart so a deep row
backlog of one tenant never delays another import's completion;
``invite_schedules`` carries one delayed message per invite batch, days ahead
if need be, apart from ``invites`` (one message per e-mail, and their short
retry delays): dramatiq fetches a queue's delayed messages in the order sent,
so a days-ahead message there would hold up a two-second retry.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import dramatiq
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend
from structlog.contextvars import bound_contextvars

from worker import imports, invites, rows
from worker.batching import RowBatcher
from worker.broker import broker, get_pool
from worker.enqueue import enqueue_many
from worker.mail import Mailer, MailError, SmtpSettings, compose
from worker.settings import get_settings

log = structlog.get_logger(__name__)
_settings = get_settings()

ROWS_QUEUE = "rows"
IMPORTS_QUEUE = "imports"
INVITE_SCHEDULES_QUEUE = "invite_schedules"
INVITES_QUEUE = "invites"
# The Redis broker refuses delays of 7 days or more; a batch due later waits
# in hops of at most this.
MAX_DELAY_MS = 6 * 24 * 3600 * 1000
# A dispatcher that found the row queue full looks again this much later.
DISPATCH_PAUSE_MS = 1_000


_batcher: RowBatcher | None = None


async def _apply_rows(import_id: int, row_numbers: list[int]) -> tuple[dict[int, str], bool]:
    async with get_pool().acquire() as conn:
        outcomes = await rows.process_rows(conn, import_id, row_numbers)
        # Claimed even when nothing was applied: a redelivered last row must
        # still be able to finish an import whose claim was lost in a crash.
        return outcomes, await rows.claim_finalize(conn, import_id)


def row_batcher() -> RowBatcher:
    """The process's batcher (created on first use, on the worker's event loop)."""
    global _batcher
    if _batcher is None:
        _batcher = RowBatcher(_apply_rows, max_batch=_settings.row_batch_size)
    return _batcher


@dramatiq.actor(
    queue_name=ROWS_QUEUE,
    max_retries=_settings.row_max_retries,
    min_backoff=_settings.row_min_backoff_ms,
    max_backoff=60_000,
    on_retry_exhausted="row_gave_up",
)
async def upsert_row(import_id: int, row_number: int) -> None:
    """Create, update or skip the person of one import row (idempotent).

    The row is applied together with the rows other threads of this process
    are handling (group commit); this returns once its batch has committed.
    """
    with bound_contextvars(import_id=import_id, row=row_number):
        outcome, claimed = await row_batcher().submit(import_id, row_number)
        log.debug("row.settled", outcome=outcome)
        if claimed:
            await asyncio.to_thread(finalize_import.send, import_id)


@dramatiq.actor(queue_name=IMPORTS_QUEUE, max_retries=3)
async def row_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Record a row whose retries ran out as failed, so its import can finish."""
    import_id, row_number = message["args"]
    reason = _last_error_line(message) or "the row kept failing"
    with bound_contextvars(import_id=import_id, row=row_number):
        async with get_pool().acquire() as conn:
            text = f"gave up after {retry_info.get('retries')} attempts: {reason}"
            if await rows.fail_row(conn, import_id, row_number, text):
                log.error("row.gave_up", reason=text)
                if await rows.claim_finalize(conn, import_id):
                    await asyncio.to_thread(finalize_import.send, import_id)


def send_row_messages_sync(import_id: int, row_numbers: list[int]) -> None:
    """Enqueue one ``upsert_row`` message per row, pipelined (blocking Redis calls)."""
    enqueue_many(upsert_row, [(import_id, row_number) for row_number in row_numbers])


async def send_row_messages(import_id: int, row_numbers: list[int]) -> None:
    """Enqueue row messages off the event loop: Redis calls here are blocking."""
    await asyncio.to_thread(send_row_messages_sync, import_id, row_numbers)


def _row_queue_size() -> int:
    # Every message of the queue not yet acknowledged (ready or prefetched by
    # a worker) is a field of this hash, where dramatiq's Redis broker keeps
    # message bodies: it is what the row messages cost Redis.
    redis_broker = upsert_row.broker
    if not isinstance(redis_broker, RedisBroker):
        return 0
    return int(redis_broker.client.hlen(f"{redis_broker.namespace}:{ROWS_QUEUE}.msgs"))


async def row_queue_room() -> int:
    """How many more row messages the queue may take (``MAX_QUEUE_BACKLOG``)."""
    return _settings.max_queue_backlog - await asyncio.to_thread(_row_queue_size)


async def dispatch_rows(conn: Any, import_id: int, after: int = 0) -> imports.Dispatched:
    """Send an import's pending rows after ``after``, and whatever comes next.

    Used by every caller that dispatches (the producer, resume, the next
    import of a tenant): when the row queue is full, a ``dispatch_import``
    message picks up from where this stopped a moment later; when nothing was
    pending, the finalizing step.
    """
    done = await imports.dispatch_pending_rows(
        conn, import_id, send_row_messages, after=after, room=row_queue_room
    )
    if done.resume_after is not None:
        await asyncio.to_thread(
            dispatch_import.send_with_options,
            args=(import_id, done.resume_after),
            delay=DISPATCH_PAUSE_MS,
        )
    elif done.claimed:
        await asyncio.to_thread(finalize_import.send, import_id)
    return done


@dramatiq.actor(queue_name=IMPORTS_QUEUE, max_retries=10, min_backoff=1_000)
async def dispatch_import(import_id: int, after: int = 0) -> None:
    """Send the row messages of an import, from the row after ``after`` on."""
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            await dispatch_rows(conn, import_id, after)


@dramatiq.actor(
    queue_name=IMPORTS_QUEUE, max_retries=10, min_backoff=1_000, on_retry_exhausted="import_gave_up"
)
async def finalize_import(import_id: int) -> None:
    """Resolve managers once every row has settled; then sweep or finish."""
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            outcome = await imports.finalize_import(conn, import_id)
            if outcome == "done":
                await _after_done(conn, import_id)
        if outcome == "sweep":
            await asyncio.to_thread(sweep_missing_people.send, import_id)


@dramatiq.actor(
    queue_name=IMPORTS_QUEUE, max_retries=10, min_backoff=1_000, on_retry_exhausted="import_gave_up"
)
async def sweep_missing_people(import_id: int) -> None:
    """The sweeper: deactivate everyone missing from a sync import's file."""
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            outcome = await imports.sweep_missing_people(conn, import_id, _settings.sweep_max_share)
            if outcome == "done":
                await _after_done(conn, import_id)


@dramatiq.actor(queue_name=IMPORTS_QUEUE, max_retries=3)
async def import_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Mark an import failed when its finalizing step kept failing."""
    (import_id,) = message["args"]
    reason = _last_error_line(message) or "its finalizing step kept failing"
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            if await imports.fail_import(conn, import_id, reason) is not None:
                await _start_next(conn, import_id)


async def _after_done(conn: Any, import_id: int) -> None:
    """A finished import: schedule its invites, start the tenant's next import."""
    for batch in await invites.scheduled_batches(conn, import_id):
        await asyncio.to_thread(schedule_invite_batch, batch.id, batch.send_at)
    await _start_next(conn, import_id)


async def _start_next(conn: Any, ended_import_id: int) -> None:
    """After an import ends, start its tenant's next queued import, if any."""
    tenant_id = await imports.tenant_of_import(conn, ended_import_id)
    if tenant_id is None:
        return
    started = await imports.start_next_import(conn, tenant_id)
    if started is not None:
        await asyncio.to_thread(dispatch_import.send, started)


def schedule_invite_batch(batch_id: int, send_at: datetime) -> None:
    """Send the batch's delayed message, due at ``send_at`` (blocking Redis call)."""
    delay_ms = int((send_at - datetime.now(UTC)).total_seconds() * 1000)
    delay = min(delay_ms, MAX_DELAY_MS) if delay_ms > 0 else None
    release_invite_batch.send_with_options(args=(batch_id,), delay=delay)


async def send_invite_messages(invite_ids: list[int]) -> None:
    """Enqueue one ``send_invite`` message per invite, pipelined."""
    await asyncio.to_thread(enqueue_many, send_invite, [(invite_id,) for invite_id in invite_ids])


@dramatiq.actor(queue_name=INVITE_SCHEDULES_QUEUE, max_retries=10, min_backoff=1_000)
async def release_invite_batch(batch_id: int) -> None:
    """The delayed-message actor: at the batch's time, fan out to its sends."""
    with bound_contextvars(invite_batch=batch_id):
        async with get_pool().acquire() as conn:
            outcome = await invites.release_batch(
                conn, batch_id, send_invite_messages, retry_after_s=_settings.invite_claim_timeout_s
            )
        if isinstance(outcome, datetime):
            # Early (a capped delay, or clocks that differ): wait again.
            await asyncio.to_thread(schedule_invite_batch, batch_id, outcome)


_mailer: Mailer | None = None


def mailer() -> Mailer:
    """The process's SMTP connections (made on first use, on the worker's loop)."""
    global _mailer
    if _mailer is None:
        _mailer = Mailer(SmtpSettings.from_url(_settings.smtp_url), timeout=_settings.smtp_timeout_s)
    return _mailer


_limiter: BucketRateLimiter | None = None


def _rate_permit() -> bool:
    """One send's share of the rate shared by every worker process (blocking Redis call)."""
    global _limiter
    if _settings.invite_rate_per_second <= 0:
        return True
    if _limiter is None:
        backend = RedisBackend(client=broker.client)
        key = f"{_settings.redis_namespace}:invite-rate"
        _limiter = BucketRateLimiter(  # type: ignore[no-untyped-call]
            backend, key, limit=_settings.invite_rate_per_second, bucket=1_000
        )
    with _limiter.acquire(raise_on_failure=False) as acquired:
        return bool(acquired)


@dramatiq.actor(
    queue_name=INVITES_QUEUE,
    max_retries=_settings.invite_max_retries,
    min_backoff=_settings.invite_min_backoff_ms,
    max_backoff=300_000,
    on_retry_exhausted="invite_gave_up",
)
async def send_invite(invite_id: int) -> None:
    """Send one invitation e-mail, once in effect (see ``worker.invites``)."""
    with bound_contextvars(invite_id=invite_id):
        async with get_pool().acquire() as conn:
            # A repeated message (redelivered, or a repeated fan-out) must not
            # use up a share of the rate that an unsent invite is waiting for.
            if not await invites.may_need_sending(conn, invite_id):
                return
        if not await asyncio.to_thread(_rate_permit):
            # Over the shared rate: come back in a second, without using up a retry.
            await asyncio.to_thread(send_invite.send_with_options, args=(invite_id,), delay=1_000)
            return
        async with get_pool().acquire() as conn:
            invitation = await invites.claim_invite(
                conn,
                invite_id,
                accept_base_url=_settings.accept_base_url,
                mail_from=_settings.mail_from,
                claim_timeout_s=_settings.invite_claim_timeout_s,
            )
        if invitation is None:
            return
        try:
            # No database connection is held while the mail server answers.
            await mailer().send(compose(invitation, _settings.mail_from))
        except MailError as exc:
            async with get_pool().acquire() as conn:
                if exc.permanent:
                    await invites.fail_invite(conn, invite_id, str(exc))
                    return
                await invites.release_claim(conn, invite_id, str(exc))
            log.warning("invite.retrying", reason=str(exc))
            raise
        async with get_pool().acquire() as conn:
            await invites.mark_sent(conn, invite_id)
        log.info("invite.sent")


@dramatiq.actor(queue_name=INVITES_QUEUE, max_retries=3)
async def invite_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Mark an invite failed when its retries ran out."""
    (invite_id,) = message["args"]
    reason = _last_error_line(message) or "the mail server kept refusing it"
    async with get_pool().acquire() as conn:
        await invites.fail_invite(
            conn, invite_id, f"gave up after {retry_info.get('retries')} attempts: {reason}"
        )


def _last_error_line(message: dict[str, Any]) -> str | None:
    traceback_text = message.get("options", {}).get("traceback") or ""
    lines = [line for line in traceback_text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


__all__ = [
    "broker",
    "dispatch_import",
    "finalize_import",
    "import_gave_up",
    "invite_gave_up",
    "release_invite_batch",
    "row_gave_up",
    "schedule_invite_batch",
    "send_invite",
    "send_row_messages",
    "sweep_missing_people",
    "upsert_row",
]
