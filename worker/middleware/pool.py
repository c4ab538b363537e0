"""The worker process's asyncpg pool, opened on dramatiq's event loop.

``DatabasePool`` opens the pool on the loop that runs the async actors,
before the worker threads start, and closes it when the worker stops; it
comes after ``AsyncIO`` in the stack: "before" hooks run in order (the loop
exists) and "after" hooks in reverse (the loop still turns while the pool
closes). Actors reach the pool through ``get_pool``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import asyncpg
import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from core.db import create_pool
from core.logs import redact
from core.settings import Settings

log = structlog.get_logger(__name__)

_pool: asyncpg.Pool | None = None


def get_pool() -> asyncpg.Pool:
    """The worker process's asyncpg pool (only inside a booted worker)."""
    if _pool is None:
        raise RuntimeError("no database pool: the DatabasePool middleware has not booted")
    return _pool


class DatabasePool(Middleware):
    """Owns the per-process asyncpg pool, tied to dramatiq's event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Open the pool on the event loop thread that runs the actors.

        "before", not "after": the worker threads start consuming before the
        "after_worker_boot" hooks run. AsyncIO's own before hook, earlier in the
        stack, has started the loop by now.
        """
        global _pool
        loop_thread = get_event_loop_thread()
        assert loop_thread is not None, "AsyncIO must come before DatabasePool"
        # Row actors share transactions (worker.batching), so a few
        # connections serve many threads.
        size = self.settings.db_pool_size
        with _stop_requested() as stopping:
            while True:
                try:
                    _pool = loop_thread.run_coroutine(create_pool(self.settings.database_url, size))
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    # dramatiq logs a failed boot hook and starts consuming anyway:
                    # without a pool every message would fail and use up its
                    # retries. Wait for the database instead (it may be restarting).
                    delay = self._next_delay()
                    log.error("worker.pool.waiting", error=redact(str(exc)), retry_in_s=delay)
                    if stopping.wait(delay):
                        raise
        log.info("worker.pool.opened", size=size)

    _delay = 0.0

    def _next_delay(self) -> float:
        self._delay = min(max(self._delay * 2, 0.5), 10.0)
        return self._delay

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Close the pool while the event loop still runs."""
        global _pool
        loop_thread = get_event_loop_thread()
        if _pool is not None and loop_thread is not None:
            loop_thread.run_coroutine(_pool.close())
            log.info("worker.pool.closed")
        _pool = None


@contextlib.contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set when SIGTERM arrives meanwhile (dramatiq's own handler still runs).

    dramatiq's handler only flags the worker to stop after its boot; a boot
    waiting for the database must notice the signal itself.
    """
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        stopping.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
    try:
        yield stopping
    finally:
        signal.signal(signal.SIGTERM, previous)
