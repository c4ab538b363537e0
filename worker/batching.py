"""Group commit: concurrent row messages of one worker process share a transaction.

Every ``upsert_row`` actor running in a process hands its row to the
process's ``RowBatcher`` and waits. The batcher applies the rows it has
collected for an import in one transaction (``worker.rows.process_rows``) and
then releases each waiting actor, so a message is acknowledged only after its
own row has been committed. Batches form by themselves: while one batch is in
the database, the rows that arrive meanwhile gather for the next one, so a
quiet worker adds no delay and a busy one commits many rows at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

# (import id, row numbers) -> (outcome per row applied, whether finalizing was claimed)
ApplyBatch = Callable[[int, list[int]], Awaitable[tuple[dict[int, str], bool]]]


@dataclass
class _ImportQueue:
    waiting: list[tuple[int, asyncio.Future[tuple[str | None, bool]]]] = field(default_factory=list)
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

    async def submit(self, import_id: int, row_number: int) -> tuple[str | None, bool]:
        """Wait until the row's batch has committed; return (its outcome, finalize claimed).

        The outcome is None when there was nothing to do (already settled, or the
        import is not running). Raises what the batch raised (to be retried).
        """
        queue = self._queues.setdefault(import_id, _ImportQueue())
        future: asyncio.Future[tuple[str | None, bool]] = asyncio.get_running_loop().create_future()
        queue.waiting.append((row_number, future))
        if queue.flushing < self.max_flushes:
            queue.flushing += 1
            # call_soon, not now: rows submitted in this same loop turn join the batch.
            asyncio.get_running_loop().call_soon(self._start_flush, import_id, queue)
        return await future

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

    async def _apply(
        self, import_id: int, batch: list[tuple[int, asyncio.Future[tuple[str | None, bool]]]]
    ) -> None:
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
