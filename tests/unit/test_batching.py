"""The row batcher: batches form from concurrent submissions; errors reach every row."""

from __future__ import annotations

import asyncio

import pytest

from worker.batching import RowBatcher


async def test_rows_submitted_together_share_a_batch_and_get_their_own_outcome() -> None:
    batches: list[list[int]] = []

    async def apply(import_id: int, rows: list[int]) -> tuple[dict[int, str], bool]:
        batches.append(rows)
        await asyncio.sleep(0.01)
        return {row: f"outcome-{row}" for row in rows if row != 3}, False

    batcher = RowBatcher(apply, max_batch=100, max_flushes=1)
    results = await asyncio.gather(*(batcher.submit(1, row) for row in range(1, 6)))

    assert batches == [[1, 2, 3, 4, 5]]
    assert [r[0] for r in results] == ["outcome-1", "outcome-2", None, "outcome-4", "outcome-5"]


async def test_rows_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    batches: list[list[int]] = []
    first_started = asyncio.Event()

    async def apply(import_id: int, rows: list[int]) -> tuple[dict[int, str], bool]:
        batches.append(rows)
        first_started.set()
        await asyncio.sleep(0.02)
        return dict.fromkeys(rows, "created"), False

    batcher = RowBatcher(apply, max_batch=100, max_flushes=1)
    first = asyncio.ensure_future(batcher.submit(1, 1))
    await first_started.wait()
    later = [asyncio.ensure_future(batcher.submit(1, row)) for row in (2, 3, 4)]
    await asyncio.gather(first, *later)

    assert batches == [[1], [2, 3, 4]]


async def test_batches_respect_the_maximum_size_and_imports_are_kept_apart() -> None:
    batches: list[tuple[int, list[int]]] = []

    async def apply(import_id: int, rows: list[int]) -> tuple[dict[int, str], bool]:
        batches.append((import_id, rows))
        return dict.fromkeys(rows, "created"), False

    batcher = RowBatcher(apply, max_batch=2, max_flushes=1)
    await asyncio.gather(*(batcher.submit(i % 2, i) for i in range(6)))

    assert sorted(batches) == [(0, [0, 2]), (0, [4]), (1, [1, 3]), (1, [5])]


async def test_a_failed_batch_raises_in_every_waiting_row() -> None:
    async def apply(import_id: int, rows: list[int]) -> tuple[dict[int, str], bool]:
        raise ConnectionError("database went away")

    batcher = RowBatcher(apply)
    results = await asyncio.gather(*(batcher.submit(1, row) for row in (1, 2)), return_exceptions=True)

    assert all(isinstance(r, ConnectionError) for r in results)
    # The batcher is usable again afterwards.
    with pytest.raises(ConnectionError):
        await batcher.submit(1, 3)


async def test_only_one_row_of_a_batch_reports_the_finalize_claim() -> None:
    async def apply(import_id: int, rows: list[int]) -> tuple[dict[int, str], bool]:
        return dict.fromkeys(rows, "created"), True

    batcher = RowBatcher(apply, max_flushes=1)
    results = await asyncio.gather(*(batcher.submit(1, row) for row in range(4)))

    assert sum(claimed for _, claimed in results) == 1
