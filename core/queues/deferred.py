"""Acknowledgements that wait for a row's batch, so that no worker thread waits for it.

A row actor (``worker.actors.upsert_row``) hands its row to the process's
batcher and returns at once, leaving the row's future here under its message
id (``defer``). When dramatiq then acknowledges the message, a consumer with
``DeferringConsumer`` takes the future (``take``) and acknowledges the message
only once it is done: after the row's batch committed, as before. A batch
that failed goes through the "after" hooks a failed actor's exception goes
through (``set_failure_hook``: the worker's ``Retries`` and ``TransientErrors``,
which re-send the message with its backoff or give up and send the gave-up
actor), and the message is then acknowledged, or dead-lettered once its
retries ran out, exactly as dramatiq does for an actor that raised.

Why: a batch gathers the rows of every message waiting for it. While each
waiting row held a worker thread, a batch was only as large as the threads
(38 rows at 128 threads a process), and more threads cost more than the
larger batches saved (GIL hand-offs and wake-ups: 272 µs of worker CPU a row
at 256 threads against 236 at 128). Now a batch is bounded by the prefetch
and ``ROW_BATCH_SIZE``, whatever the threads.

What a crash or a stop does is unchanged: a message is acknowledged only
after its row committed, so a process that dies first leaves it with the
broker, which redelivers it. A graceful stop gives back the rows no batch has
taken yet (``give_back_waiting`` through ``set_release_hook``: their futures
fail with ``GivenBack`` and their messages are requeued, unacknowledged) as
it begins (``worker.middleware.stopping``), again once the worker threads
have stopped, and when a consumer closes; the consumer waits for the batches
in the database, then closes.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
from dramatiq import MessageProxy

log = structlog.get_logger(__name__)

# The longest a closing consumer waits for rows already handed to the batcher.
CLOSE_WAIT_S = 30.0

FailureHook = Callable[[MessageProxy, BaseException], None]
# Gives back the rows handed over and not yet in a batch (the worker's batcher); returns how many.
ReleaseHook = Callable[[], int]


class GivenBack(Exception):
    """A row's future fails with this when the stopping process gives its row back unapplied."""


_pending: dict[str, concurrent.futures.Future[Any]] = {}
_failure_hook: FailureHook | None = None
_release_hook: ReleaseHook | None = None
_failures: concurrent.futures.ThreadPoolExecutor | None = None
_failures_lock = threading.Lock()


def defer(message_id: str, future: concurrent.futures.Future[Any]) -> None:
    """Acknowledge message ``message_id`` only once ``future`` is done (called by its actor)."""
    _pending[message_id] = future


def take(message_id: str) -> concurrent.futures.Future[Any] | None:
    """The future the message's acknowledgement waits for, if its actor left one."""
    return _pending.pop(message_id, None)


def set_failure_hook(hook: FailureHook) -> None:
    """What a failed future's message goes through before it is settled (the worker's retry hooks)."""
    global _failure_hook
    _failure_hook = hook


def set_release_hook(hook: ReleaseHook) -> None:
    """How a closing consumer gives back the rows that no batch has taken yet."""
    global _release_hook
    _release_hook = hook


def give_back_waiting(when: str) -> int:
    """Give back the rows handed over that no batch has taken yet (a stopping worker); how many."""
    if _release_hook is None:
        return 0
    try:
        given_back = _release_hook()
    except Exception as exc:  # they stay in their batches, acknowledged as they commit
        log.warning("broker.give_back_failed", when=when, error=repr(exc))
        return 0
    if given_back:
        log.info("broker.rows_given_back", when=when, rows=given_back)
    return given_back


def _failure_pool() -> concurrent.futures.ThreadPoolExecutor:
    # Off the event loop (where futures complete): the hooks send messages.
    global _failures
    with _failures_lock:
        if _failures is None:
            _failures = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="deferred-failures")
        return _failures


class DeferringConsumer:
    """A consumer mix-in (first in the bases): ``ack`` waits for the future the message's actor left.

    The broker's own ``ack`` and ``nack`` do the settling, from the thread the
    future completes on (the event loop) or, after a failure, from a thread of
    this module's; both are thread-safe in the consumers this mixes into (the
    Redis broker's acknowledgement buffer, RabbitMQ's ``add_callback_threadsafe``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: set[concurrent.futures.Future[Any]] = set()

    def ack(self, message: MessageProxy) -> None:
        future = take(message.message_id)
        if future is None:
            super().ack(message)  # type: ignore[misc]
            return
        self._deferred.add(future)
        future.add_done_callback(partial(self._settle, message))

    def _settle(self, message: MessageProxy, future: concurrent.futures.Future[Any]) -> None:
        self._deferred.discard(future)
        failure = future.exception()
        if failure is None:
            super().ack(message)  # type: ignore[misc]
        elif isinstance(failure, GivenBack):
            _failure_pool().submit(self._give_back, message)
        else:
            _failure_pool().submit(self._settle_failed, message, failure)

    def _give_back(self, message: MessageProxy) -> None:
        # Back on its queue unacknowledged (RabbitMQ: when the channel closes).
        self.requeue([message])  # type: ignore[attr-defined]
        queued = getattr(self, "queued_message_ids", None)
        if queued is not None:
            queued.discard(message.message_id)

    def _settle_failed(self, message: MessageProxy, failure: BaseException) -> None:
        message.stuff_exception(failure)
        try:
            if _failure_hook is not None:
                _failure_hook(message, failure)
        finally:
            if message.failed:
                super().nack(message)  # type: ignore[misc]
            else:
                super().ack(message)  # type: ignore[misc]

    def close(self) -> None:
        waiting = list(self._deferred)
        if waiting:
            give_back_waiting(f"closing {getattr(self, 'queue_name', 'the consumer')}")
            _, left = concurrent.futures.wait(waiting, timeout=CLOSE_WAIT_S)
            if left:
                log.warning(
                    "broker.deferred_acks_left",
                    rows=len(left),
                    then="redelivered by the broker; the idempotent actors find their work done",
                )
        if _failures is not None:
            # The failed rows' retries are sent before the consumer closes.
            _failures.submit(lambda: None).result(timeout=CLOSE_WAIT_S)
        super().close()  # type: ignore[misc]
