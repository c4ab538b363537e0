"""Every worker process runs the housekeeping pass (``core.housekeeping``) every interval.

The pass looks for work the broker may have lost (overdue invite batches,
stalled imports, lost webhook deliveries) and forgets old undo values; this
middleware only schedules it on the worker's event loop, every
``HOUSEKEEPING_INTERVAL_S``, once the pool is open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from typing import Any

import dramatiq
import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware

from core.housekeeping import run_housekeeping
from core.settings import Settings
from worker.middleware.pool import get_pool

log = structlog.get_logger(__name__)


class Housekeeping(Middleware):
    """Runs ``run_housekeeping`` on the worker's event loop, every interval."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: concurrent.futures.Future[None] | None = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval_s)
            try:
                async with get_pool().acquire() as conn:
                    await run_housekeeping(conn, self.settings)
            except Exception as exc:  # a failed pass must not end the loop
                log.error("housekeeping.failed", error=repr(exc))

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Start the loop once the pool is open."""
        loop_thread = get_event_loop_thread()
        if loop_thread is not None and self.settings.housekeeping_interval_s > 0:
            self._task = asyncio.run_coroutine_threadsafe(self._loop(), loop_thread.loop)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        """Stop the loop before the pool closes."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(Exception):
                self._task.result(timeout=5)
            self._task = None
