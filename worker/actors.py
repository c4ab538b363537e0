"""The dramatiq actors: thin shells that decode a message, call a plain async
function (``core.rows``, ``core.imports``, ``core.undo``, ``core.invites``,
``core.webhooks.deliveries``, ``core.sources.run``) and send
what comes next through ``core.outbox``.

The actors declare themselves on the process's broker: the worker's, which
``worker.broker`` installs before this module is imported (the Procfile's
``dramatiq worker.broker worker.actors``), or a test's ``StubBroker``.
Importing this module reads no settings and connects to nothing; the
settings-driven retry options are applied by ``worker.middleware.settings``.
Queues are named in ``core.queues``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, ParamSpec, TypeVar

import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import CurrentMessage
from structlog.contextvars import bound_contextvars

from core import imports, invites, outbox, queues, rows, undo
from core.mail import Mailer, SmtpSettings
from core.queues import deferred
from core.settings import get_settings
from core.sources import run as source_run
from core.vocabulary import EventType, Step
from core.webhooks import deliveries
from worker.batching import RowBatcher, RowHandoff, Settled
from worker.middleware.pool import get_pool
from worker.middleware.transient import failed_transiently

log = structlog.get_logger(__name__)
broker = queues.current_broker()

_handoff: RowHandoff | None = None
_finalize_senders = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="finalize-sender")

P = ParamSpec("P")
R = TypeVar("R")


def _import_step(fn: Callable[P, Awaitable[R]]) -> dramatiq.Actor[P, R]:
    """Declare an import's step (dispatch, finalize, sweep): retried for a while,
    then ``import_gave_up`` decides what becomes of the import."""
    # A decorator made once cannot be reused: dramatiq's keeps the first
    # function's name for every actor it declares.
    declare = dramatiq.actor(
        broker=broker,
        queue_name=queues.IMPORTS,
        max_retries=10,
        min_backoff=1_000,
        on_retry_exhausted="import_gave_up",
    )
    return declare(fn)


# What happens to work left pending after a transient error, for the log.
_RECOVERY = "resumed by housekeeping once the import has been idle for STALL_AFTER_S"


async def _apply_rows(import_id: int, row_numbers: list[int]) -> tuple[dict[int, str], bool]:
    async with get_pool().acquire() as conn:
        applied = await rows.process_rows(conn, import_id, row_numbers)
        # Only when this batch may have been among the last, or when nothing
        # was applied: a redelivered last row must still be able to finish an
        # import whose claim was lost in a crash. Housekeeping is the backstop.
        if not applied.outcomes or applied.may_be_last(get_settings().import_max_in_flight):
            return applied.outcomes, await rows.claim_finalize(conn, import_id)
        return applied.outcomes, False


def row_handoff() -> RowHandoff:
    """The process's way to its batcher, on the worker's event loop (made on first use,
    and again if dramatiq's loop was replaced, as a test's second worker does)."""
    global _handoff
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("upsert_row needs dramatiq's AsyncIO middleware")
    if _handoff is None or _handoff.loop is not loop_thread.loop:
        batcher = RowBatcher(_apply_rows, max_batch=get_settings().row_batch_size)
        _handoff = RowHandoff(batcher, loop_thread.loop)
        deferred.set_release_hook(_handoff.release_waiting)
    return _handoff


def _wait(future: concurrent.futures.Future[Settled]) -> Settled:
    # In short waits, so that dramatiq's time limit and shutdown notices
    # (exceptions raised in this thread) are seen.
    while True:
        try:
            return future.result(timeout=0.1)
        except concurrent.futures.TimeoutError:
            if future.done():
                raise


@dramatiq.actor(broker=broker, queue_name=queues.ROWS, max_backoff=60_000, on_retry_exhausted="row_gave_up")
def upsert_row(import_id: int, row_number: int) -> None:
    """Create, update or skip the person of one import row (idempotent).

    The row is applied together with the other rows this process holds
    (group commit, on the event loop). On the worker's brokers this returns
    at once and the message is acknowledged once the row's batch committed
    (``core.queues.deferred``), so a batch is as large as the prefetch
    allows, not as the threads; on another broker (the tests' stub) it
    returns once the batch committed. A plain function, not a coroutine: the
    row is handed over with the others that arrived meanwhile, in one wake-up
    of the loop.
    """
    future = row_handoff().submit(import_id, row_number)
    message = CurrentMessage.get_current_message() if getattr(broker, "defers_acks", False) else None
    if message is not None:
        # Returns now: the consumer acknowledges the message once the batch
        # committed, or sends it through the retries if it failed
        # (core.queues.deferred); the thread takes the next message meanwhile.
        future.add_done_callback(partial(_row_settled, import_id))
        deferred.defer(message.message_id, future)
        return
    with bound_contextvars(import_id=import_id, row=row_number):  # a broker that cannot wait: tests' stub
        outcome, claimed = _wait(future)
        log.debug("row.settled", outcome=outcome)
        if claimed:
            outbox.send_finalize_sync(import_id)


def _row_settled(import_id: int, future: concurrent.futures.Future[Settled]) -> None:
    # On the event loop, where the batch completed: the finalizing step is
    # sent from a thread (a broker call), once per import at most.
    if future.exception() is None and future.result()[1]:
        _finalize_senders.submit(outbox.send_finalize_sync, import_id)


@dramatiq.actor(broker=broker, queue_name=queues.IMPORTS, max_retries=3)
async def row_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Settle a row whose retries ran out: failed, so its import can finish.

    Unless its last error was transient (``core.errors.is_transient``: the
    database away, a lost connection, a deadlock), which is not the row's
    fault: the row stays pending, and the stalled-import recovery
    (``core.recovery``) sends it again once the database answers.
    """
    import_id, row_number = message["args"]
    reason = _last_error_line(message) or "the row kept failing"
    with bound_contextvars(import_id=import_id, row=row_number):
        if failed_transiently(message):
            log.warning("row.left_pending", reason=reason, attempts=retry_info.get("retries"), then=_RECOVERY)
            return
        async with get_pool().acquire() as conn:
            text = f"gave up after {retry_info.get('retries')} attempts: {reason}"
            if await rows.fail_row(conn, import_id, row_number, text):
                log.error("row.gave_up", reason=text)
                if await rows.claim_finalize(conn, import_id):
                    await outbox.send_finalize(import_id)


@_import_step
async def dispatch_import(import_id: int, after: int = 0) -> None:
    """Send the row messages of an import, from the row after ``after`` on."""
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            await outbox.dispatch_rows(conn, import_id, after)


@_import_step
async def finalize_import(import_id: int) -> None:
    """Resolve managers once every row has settled; then sweep or finish.

    An undo's work runs here, a few seconds of batches per message, the next
    message going on where this one stopped (``core.undo``).
    """
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            outcome = await imports.finalize_import(conn, import_id)
            if outcome == Step.UNDO:
                settings = get_settings()
                outcome = await undo.run_undo(
                    conn, import_id, settings.undo_batch_size, settings.undo_retention_days
                )
            if outcome == Step.DONE:
                await _after_done(conn, import_id)
        if outcome == Step.SWEEP:
            await outbox.send_sweep(import_id)
        elif outcome == Step.MORE:
            await outbox.send_finalize(import_id)
        elif outcome == Step.ROWS:
            await outbox.send_dispatch(import_id)


@_import_step
async def sweep_missing_people(import_id: int) -> None:
    """The sweeper: deactivate everyone missing from a sync import's file."""
    with bound_contextvars(import_id=import_id):
        async with get_pool().acquire() as conn:
            outcome = await imports.sweep_missing_people(conn, import_id, get_settings().sweep_max_share)
            if outcome == Step.DONE:
                await _after_done(conn, import_id)
            elif outcome == Step.BLOCKED:
                await outbox.send_new_deliveries(conn, import_id, EventType.IMPORT_BLOCKED)


@dramatiq.actor(broker=broker, queue_name=queues.IMPORTS, max_retries=3)
async def import_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Mark an import failed when its finalizing step kept failing.

    Not when the last error was transient, nor for ``dispatch_import`` (its
    rows are all recorded; only their messages are missing): the import stays
    in its state and the stalled-import recovery resumes it.
    """
    import_id = message["args"][0]  # dispatch_import also carries the row to go on after
    step = message.get("actor_name")
    reason = _last_error_line(message) or "its finalizing step kept failing"
    with bound_contextvars(import_id=import_id):
        transient = failed_transiently(message)
        if transient or step == "dispatch_import":
            log.warning("import.left_pending", step=step, reason=reason, transient=transient, then=_RECOVERY)
            return
        async with get_pool().acquire() as conn:
            if await imports.fail_import(conn, import_id, reason) is not None:
                await outbox.send_new_deliveries(conn, import_id, EventType.IMPORT_FAILED)
                await _start_next(conn, import_id)


async def _after_done(conn: Any, import_id: int) -> None:
    """A finished import: schedule its invites, start the tenant's next import, tell its webhooks."""
    for batch in await invites.scheduled_batches(conn, import_id):
        await outbox.schedule_invite_batch(batch.id, batch.send_at)
    await _start_next(conn, import_id)
    await outbox.send_new_deliveries(conn, import_id, EventType.IMPORT_COMPLETED)


async def _start_next(conn: Any, ended_import_id: int) -> None:
    """After an import ends, start its tenant's next queued import, if any."""
    tenant_id = await imports.tenant_of_import(conn, ended_import_id)
    if tenant_id is None:
        return
    started = await imports.start_next_import(conn, tenant_id)
    if started is not None:
        await outbox.send_dispatch(started)


@dramatiq.actor(broker=broker, queue_name=queues.INVITE_SCHEDULES, max_retries=10, min_backoff=1_000)
async def release_invite_batch(batch_id: int) -> None:
    """The delayed-message actor: at the batch's time, fan out to its sends."""
    with bound_contextvars(invite_batch=batch_id):
        async with get_pool().acquire() as conn:
            outcome = await invites.release_batch(
                conn, batch_id, outbox.send_invites, retry_after_s=get_settings().invite_claim_timeout_s
            )
        if isinstance(outcome, datetime):
            # Early (a capped delay, or clocks that differ): wait again.
            await outbox.schedule_invite_batch(batch_id, outcome)


_mailer: Mailer | None = None


def mailer() -> Mailer:
    """The process's SMTP connections (made on first use, on the worker's loop)."""
    global _mailer
    if _mailer is None:
        settings = get_settings()
        _mailer = Mailer(SmtpSettings.from_url(settings.smtp_url), timeout=settings.smtp_timeout_s)
    return _mailer


_limiter: Any = None


def _rate_permit_sync() -> bool:
    """One send's share of the rate shared by every worker process (blocking)."""
    global _limiter
    per_second = get_settings().invite_rate_per_second
    if per_second <= 0:
        return True
    if _limiter is None:
        _limiter = queues.rate_limiter("invite-rate", per_second)
    with _limiter.acquire(raise_on_failure=False) as acquired:
        return bool(acquired)


async def _rate_permit() -> bool:
    if not queues.broker_keeps_rates():  # RabbitMQ: the rate is kept in PostgreSQL
        per_second = get_settings().invite_rate_per_second
        return per_second <= 0 or await invites.take_rate_permit(get_pool(), "invite-rate", per_second)
    return await asyncio.to_thread(_rate_permit_sync)


@dramatiq.actor(
    broker=broker, queue_name=queues.INVITES, max_backoff=300_000, on_retry_exhausted="invite_gave_up"
)
async def send_invite(invite_id: int) -> None:
    """Send one invitation e-mail, once in effect (see ``core.invites.deliver_invite``)."""
    with bound_contextvars(invite_id=invite_id):
        await invites.deliver_invite(
            get_pool(),
            invite_id,
            get_settings(),
            mailer(),
            _rate_permit,
            outbox.send_invite_later,
            _invites_completed,
        )


async def _invites_completed(import_id: int) -> None:
    """The import's last invite settled: send its ``invites.completed`` deliveries."""
    async with get_pool().acquire() as conn:
        await outbox.send_new_deliveries(conn, import_id, EventType.INVITES_COMPLETED)


@dramatiq.actor(broker=broker, queue_name=queues.INVITES, max_retries=3)
async def invite_gave_up(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
    """Mark an invite failed when its retries ran out."""
    (invite_id,) = message["args"]
    reason = _last_error_line(message) or "the mail server kept refusing it"
    async with get_pool().acquire() as conn:
        completed = await invites.fail_invite(
            conn, invite_id, f"gave up after {retry_info.get('retries')} attempts: {reason}"
        )
        if completed is not None:
            await outbox.send_new_deliveries(conn, completed, EventType.INVITES_COMPLETED)


# Attempts in progress on this process's loop (referenced until they end), and
# the slots they take (WEBHOOK_CONCURRENCY; made on first use).
_attempts: set[concurrent.futures.Future[None]] = set()
_attempt_slots: threading.BoundedSemaphore | None = None
# A delivery that found every slot taken comes back this much later.
ATTEMPT_PAUSE_MS = 1_000


@dramatiq.actor(broker=broker, queue_name=queues.WEBHOOKS, max_retries=3, min_backoff=1_000)
def deliver_webhook(delivery_id: int) -> None:
    """Start a webhook delivery's attempt on the event loop and return at once.

    A plain function, not a coroutine: a receiver that takes WEBHOOK_TIMEOUT_S
    to fail must not hold one of the worker threads that rows and invites
    need. At most WEBHOOK_CONCURRENCY attempts run at once per process; with
    every slot taken the message comes back ``ATTEMPT_PAUSE_MS`` later (so a
    waiting delivery is a message in Redis, never a task piling up in
    memory). PostgreSQL holds the delivery and its schedule: an attempt lost
    with this process (its claim expires) is re-sent by housekeeping.
    """
    global _attempt_slots
    loop_thread = get_event_loop_thread()
    if loop_thread is None:
        raise RuntimeError("deliver_webhook needs dramatiq's AsyncIO middleware")
    if _attempt_slots is None:
        _attempt_slots = threading.BoundedSemaphore(get_settings().webhook_concurrency)
    if not _attempt_slots.acquire(blocking=False):
        outbox.send_delivery_later_sync(delivery_id, ATTEMPT_PAUSE_MS)
        return
    future = asyncio.run_coroutine_threadsafe(_attempt(delivery_id, _attempt_slots), loop_thread.loop)
    _attempts.add(future)
    future.add_done_callback(_attempts.discard)


async def _attempt(delivery_id: int, slots: threading.BoundedSemaphore) -> None:
    """One attempt (``core.webhooks.deliveries.deliver``); when it failed, the delayed message of the next."""
    with bound_contextvars(webhook_delivery=delivery_id):
        try:
            outcome = await deliveries.deliver(get_pool(), delivery_id, get_settings())
            if outcome.next_at is not None:
                await outbox.schedule_delivery(delivery_id, outcome.next_at)
        except Exception as exc:  # the delivery waits in PostgreSQL for housekeeping
            log.error("webhook.attempt_failed", error=repr(exc), then="re-sent by housekeeping once overdue")
        finally:
            slots.release()


@dramatiq.actor(broker=broker, queue_name=queues.SOURCES, max_retries=3, min_backoff=10_000)
def run_source(run_id: int) -> None:
    """One attempt of a scheduled source's run (``core.sources.run``); when it is to be tried again,
    the delayed message of its next attempt.

    A plain function running the attempt on an event loop of its own, on this
    thread: the fetch and the review read and check the whole file in
    Python, which on the worker's shared loop would stall the row batches
    and webhook attempts for as long. PostgreSQL holds the run and its
    schedule: a message lost (or this process) is re-sent by housekeeping.
    """
    with bound_contextvars(source_run=run_id):
        attempted = asyncio.run(source_run.attempt_run(get_settings(), run_id))
        if attempted.next_at is not None:
            outbox.schedule_source_run_sync(run_id, attempted.next_at)


def _last_error_line(message: dict[str, Any]) -> str | None:
    traceback_text = message.get("options", {}).get("traceback") or ""
    lines = [line for line in traceback_text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None
