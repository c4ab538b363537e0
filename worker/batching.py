"""Group commit: concurrent row messages of one worker process share a transaction.

Every ``upsert_row`` actor running in a process hands its row to the
process's ``RowBatcher`` and waits. The batcher applies the rows it has
collected for an import in one transaction (``core.rows.process_rows``) and
then releases each waiting actor, so a message is acknowledged only after its
own row has been committed. Batches form by themselves: while one batch is in
the database, the rows that arrive meanwhile gather for the next one, so a
quiet worker adds no delay and a busy one commits many rows at a time.

The actors run on dramatiq's worker threads and the batcher on the process's
event loop. ``RowHandoff`` carries rows from one to the other with one
wake-up of the loop for all the rows that arrived meanwhile, not one
cross-thread coroutine per row (which cost a fifth of a worker's CPU).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from core.queues.deferred import GivenBack

log = structlog.get_logger(__name__)

# (import id, row numbers) -> (outcome per row applied, whether finalizing was claimed)
ApplyBatch = Callable[[int, list[int]], Awaitable[tuple[dict[int, str], bool]]]


# What a waiting row is told: (its outcome, whether finalizing was claimed).
Settled = tuple[str | None, bool]


class Waiter(Protocol):
    """Where a row's result goes: an ``asyncio.Future`` or a ``concurrent.futures.Future``."""

    def done(self) -> bool: ...

    def set_result(self, result: Settled, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


@dataclass
class _ImportQueue:
    waiting: list[tuple[int, Waiter]] = field(default_factory=list)
    flushing: int = 0


class RowBatcher:
    """Collects rows per import and applies them in batches of at most ``max_batch``.

    At most ``max_flushes`` batches of one import are in the database at once.
    Must be used from a single event loop.
    """

    def __init__(self, apply: ApplyBatch, *, max_batch: int = 200, max_flushes: int = 2) -> None:
        self.apply = apply
        self.max_batch = max_batch
        self.max_flushes = max_flushes
        self._queues: dict[int, _ImportQueue] = {}
        # The loop keeps only weak references to tasks: hold them until done.
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, import_id: int, row_number: int) -> Settled:
        """Wait until the row's batch has committed; return (its outcome, finalize claimed).

        The outcome is None when there was nothing to do (already settled, or the
        import is not running). Raises what the batch raised (to be retried).
        """
        future: asyncio.Future[Settled] = asyncio.get_running_loop().create_future()
        self.add(import_id, row_number, future)
        return await future

    def add(self, import_id: int, row_number: int, waiter: Waiter) -> None:
        """Queue a row; ``waiter`` gets its result once its batch has committed (on the loop)."""
        queue = self._queues.setdefault(import_id, _ImportQueue())
        queue.waiting.append((row_number, waiter))
        if queue.flushing < self.max_flushes:
            queue.flushing += 1
            # call_soon, not now: rows added in this same loop turn join the batch.
            asyncio.get_running_loop().call_soon(self._start_flush, import_id, queue)

    def release_waiting(self) -> int:
        """Give back every row not yet in a batch (they fail with ``GivenBack``); return how many.

        A graceful stop: the batches in the database finish, and the rest go
        back to the broker unacknowledged, for another process.
        """
        released = 0
        for queue in self._queues.values():
            waiting, queue.waiting = queue.waiting, []
            for _, waiter in waiting:
                if not waiter.done():
                    waiter.set_exception(GivenBack())
                    released += 1
        return released

    def _start_flush(self, import_id: int, queue: _ImportQueue) -> None:
        task = asyncio.ensure_future(self._flush(import_id, queue))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self, import_id: int, queue: _ImportQueue) -> None:
        try:
            while queue.waiting:
                batch, queue.waiting = queue.waiting[: self.max_batch], queue.waiting[self.max_batch :]
                await self._apply(import_id, batch)
        finally:
            queue.flushing -= 1
            if not queue.flushing and not queue.waiting:
                self._queues.pop(import_id, None)

    async def _apply(self, import_id: int, batch: list[tuple[int, Waiter]]) -> None:
        row_numbers = [row for row, _ in batch]
        try:
            outcomes, claimed = await self.apply(import_id, row_numbers)
        except Exception as exc:  # handed to every waiting actor, which retries its own row
            log.warning("rows.batch_failed", import_id=import_id, rows=len(batch), error=repr(exc))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        log.debug("rows.batch_committed", import_id=import_id, rows=len(batch), applied=len(outcomes))
        # The claim belongs to one row only, so only one actor sends finalize.
        for index, (row, future) in enumerate(batch):
            if not future.done():
                future.set_result((outcomes.get(row), claimed and index == 0))


class RowHandoff:
    """Hands rows from worker threads to a ``RowBatcher`` on an event loop.

    ``submit`` queues the row and wakes the loop only if no wake-up is
    pending: rows that arrive while the loop is busy ride along with the one
    already asked for. Thread-safe; the batcher is only touched on the loop.
    """

    def __init__(self, batcher: RowBatcher, loop: asyncio.AbstractEventLoop) -> None:
        self.batcher = batcher
        self.loop = loop
        self._lock = threading.Lock()
        self._arrived: list[tuple[int, int, concurrent.futures.Future[Settled]]] = []
        self._wake_pending = False

    def submit(self, import_id: int, row_number: int) -> concurrent.futures.Future[Settled]:
        """Queue a row; the future completes once its batch has committed."""
        future: concurrent.futures.Future[Settled] = concurrent.futures.Future()
        with self._lock:
            self._arrived.append((import_id, row_number, future))
            if self._wake_pending:
                return future
            self._wake_pending = True
        self.loop.call_soon_threadsafe(self._drain)
        return future

    def release_waiting(self, timeout: float = 5.0) -> int:
        """``RowBatcher.release_waiting`` on the loop, rows still arriving included; how many."""
        if not self.loop.is_running():
            return 0  # nothing runs there to take a row into a batch
        return asyncio.run_coroutine_threadsafe(self._release(), self.loop).result(timeout)

    async def _release(self) -> int:
        self._drain()
        return self.batcher.release_waiting()

    def _drain(self) -> None:
        with self._lock:
            arrived, self._arrived = self._arrived, []
            self._wake_pending = False
        for import_id, row_number, future in arrived:
            self.batcher.add(import_id, row_number, future)
