"""A worker process that stops cleanly, however the stop signal reaches it.

dramatiq 2.2.1's worker process (``dramatiq.cli.worker_process``) takes its
first SIGTERM or SIGHUP as "stop gracefully" and any later one as "exit now":
its handler raises SystemExit in the main thread, wherever that thread is. A
process manager that signals the whole process group (systemd's default
KillMode=control-group, supervisord's stopasgroup) delivers two to every
worker process: its own, and the one dramatiq's main process forwards. The
SystemExit then lands before or inside ``Worker.stop``: the event loop thread
(not a daemon) is never stopped, so the interpreter waits for it for ever,
while the consumer and worker threads (daemons) go on fetching and applying
messages whose follow-up sends all fail (the interpreter is shutting down),
under a heartbeat that stays fresh, so nobody takes those messages back.

``GracefulStop`` closes that hole in three places:

- once dramatiq has installed its handlers in a worker process, it wraps
  them: the first SIGTERM, SIGHUP or SIGINT starts dramatiq's graceful stop
  (stop taking messages, finish the ones in progress, requeue the rest);
  any later one is logged and ignored.
- a watchdog thread ends the process (``os._exit``) when that stop has not
  finished ``WORKER_SHUTDOWN_TIMEOUT_MS`` plus ``STOP_MARGIN_S`` after the
  first signal, or at once when the main thread is gone while the worker
  still runs (nothing can be sent any more: the process must not consume).
  Whatever it still held returns to its queue when its heartbeat times out.
- when a consumer thread stops, the messages it had fetched but not yet
  handed to a worker thread go back to their queue: ``Worker.stop`` requeues
  the ones handed over, not those.
- the rows handed to the batcher and not yet in a batch go back to their
  queue as the stop begins and again once the worker threads have stopped
  (``core.queues.deferred.give_back_waiting``): only the batches already in
  the database finish, not every row the consumers had prefetched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from core import queues
from core.queues import deferred
from core.settings import Settings

log = structlog.get_logger(__name__)

# The signals that stop a worker process. dramatiq ignores SIGINT in worker
# processes (Ctrl-C reaches the whole group and the main process forwards it
# as SIGTERM); once repeats are harmless, a SIGINT sent to a worker process
# alone can stop it like the others.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
# Time beyond the shutdown timeout for what follows the worker threads' join:
# stopping the consumers and housekeeping (up to 5 s), requeueing, closing the
# pool, and the up to one second dramatiq's main loop sleeps before stopping.
STOP_MARGIN_S = 5.0
# dramatiq's exit status for a killed worker process (``dramatiq.cli.RET_KILLED``).
EXIT_KILLED = 1
_POLL_S = 0.5
# How long the watchdog may spend writing its last log line before it exits anyway.
_LAST_WORDS_S = 2.0


class GracefulStop(Middleware):
    """One graceful stop per worker process, ended by force when it overruns (see the module)."""

    def __init__(
        self,
        settings: Settings,
        *,
        margin_s: float = STOP_MARGIN_S,
        end_process: Callable[[int], object] = os._exit,
    ) -> None:
        self.overdue_after_s = settings.worker_shutdown_timeout_ms / 1000 + margin_s
        self.end_process = end_process
        self.main_thread = threading.main_thread()
        self.booted = threading.Event()
        self.shut_down = threading.Event()
        self._requested_at: float | None = None
        # What the signal handler saw, logged by the watchdog thread: a handler
        # that writes a log line can be interrupted by the next signal in the
        # middle of that write, and the repeat's own write then fails or waits.
        self._first_signal: str | None = None
        self._repeats = 0

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        """Wrap dramatiq's signal handlers and start the watchdog (in each worker process)."""
        if threading.current_thread() is not threading.main_thread():
            return
        dramatiq_stop = signal.getsignal(signal.SIGTERM)
        if not callable(dramatiq_stop):
            return  # not dramatiq's worker process: nothing to wrap

        def on_stop_signal(signum: int, frame: FrameType | None) -> None:
            if self._requested_at is not None:
                self._repeats += 1
                return
            # Set before dramatiq's handler runs: a signal arriving while it
            # logs re-enters this function and must find the stop under way.
            self._requested_at = time.monotonic()
            self._first_signal = signal.Signals(signum).name
            dramatiq_stop(signum, frame)

        for signum in STOP_SIGNALS:
            signal.signal(signum, on_stop_signal)
        self.main_thread = threading.current_thread()
        threading.Thread(target=self._watch, name="stop-watchdog", daemon=True).start()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        """From now on a vanished main thread means a worker left running unattended."""
        self.booted.set()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """The stop begins: rows no batch has taken yet go back to their queue."""
        deferred.give_back_waiting("the stop began")

    def before_consumer_thread_shutdown(self, broker: dramatiq.Broker, thread: Any) -> None:
        """Requeue what the stopping consumer fetched but never handed to a worker thread
        (and the rows worker threads handed to the batcher while they finished)."""
        deferred.give_back_waiting("the worker threads stopped")
        consumer = getattr(thread, "consumer", None)
        if consumer is None:
            return
        try:
            requeued = queues.requeue_prefetched(consumer)
        except Exception as exc:  # the heartbeat timeout brings them back anyway
            log.warning("worker.stop.requeue_failed", queue=thread.queue_name, error=repr(exc))
            return
        if requeued:
            log.info("worker.stop.requeued_prefetched", queue=thread.queue_name, messages=requeued)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """The graceful stop is complete: first of the worker's middleware, so this runs after
        their hooks (the pool closed, the event loop stopped)."""
        self.shut_down.set()

    def _watch(self) -> None:
        # Still watching after the stop completed: the interpreter's own
        # shutdown (joining non-daemon threads) is where the old hang was.
        reported = 0
        while True:
            if self._first_signal is not None and reported == 0:
                log.info("worker.stop.requested", signal=self._first_signal)
                reported = 1
            if self._repeats >= reported > 0:
                log.warning("worker.stop.signal_ignored", repeats=self._repeats)
                reported = self._repeats + 1
            if self.booted.is_set() and not self.shut_down.is_set() and not self.main_thread.is_alive():
                self._end("worker.stop.main_thread_gone")
                return
            requested = self._requested_at
            if requested is not None and time.monotonic() - requested > self.overdue_after_s:
                self._end("worker.stop.overdue", after_s=self.overdue_after_s)
                return
            time.sleep(_POLL_S)

    def _end(self, event: str, **details: Any) -> None:
        # The last line is worth a try, not a hang: a thread stopped in the
        # middle of a write may hold the stream's lock for good.
        deadline = threading.Timer(_LAST_WORDS_S, self.end_process, args=(EXIT_KILLED,))
        deadline.daemon = True
        deadline.start()
        log.error(event, exiting=True, **details)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # nothing more can be done about a lost line
                stream.flush()
        self.end_process(EXIT_KILLED)
