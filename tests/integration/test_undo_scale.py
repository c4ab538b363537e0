"""How long undoing a 100,000-row import takes (slow; prints the figures).

    .venv/bin/pytest -q -s -m slow tests/integration/test_undo_scale.py

Imports 100,000 people, then a wrong file that retitles all of them, applying
the rows in batches of 500 without a broker (as a worker's group commit
would), then times the undo of the wrong import (100,000 people restored) and
of the first (100,000 people deactivated), each through ``core.undo.run_undo``
as the worker's actor runs it, at the default UNDO_BATCH_SIZE.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from core import imports, rows, undo
from core.intake.options import ImportOptions
from core.intake.reading import open_source
from core.intake.submit import ImportRequest, record_import
from core.settings import Settings
from core.vocabulary import Step
from tests.support.imports import person, start_undo, wait_final, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROWS = 100_000


async def _apply(conn: Any, path: Path, tenant: str) -> int:
    with open_source(path) as source:
        import_id = await record_import(
            conn, ImportRequest(tenant=tenant, options=ImportOptions(mode="upsert")), source
        )
    assert await imports.start_next_import(conn, tenant) == import_id
    pending: list[int] = []

    async def collect(_: int, batch: list[int]) -> None:
        pending.extend(batch)

    await imports.dispatch_pending_rows(conn, import_id, collect)
    for start in range(0, len(pending), 500):
        await rows.process_rows(conn, import_id, pending[start : start + 500])
    assert await rows.claim_finalize(conn, import_id)
    assert await imports.finalize_import(conn, import_id) == "done"
    return import_id


async def _timed_undo(conn: Any, import_id: int) -> tuple[float, dict[str, Any]]:
    settings = Settings()
    started = time.monotonic()
    undo_id = await start_undo(conn, import_id)
    while (
        await undo.run_undo(conn, undo_id, settings.undo_batch_size, settings.undo_retention_days)
        == Step.MORE
    ):
        pass
    elapsed = time.monotonic() - started
    return elapsed, (await wait_final(conn, undo_id))["undo"]


async def test_undoing_a_100000_row_import(conn: Any, tmp_path: Path) -> None:
    tenant = f"t-scale-{uuid.uuid4().hex[:8]}"
    people = [
        person(f"P{i}", "Staff", f"p{i}@scale.example.com", f"Team {i % 50}", title="Old")
        for i in range(ROWS)
    ]
    first = await _apply(conn, write_csv(tmp_path / "a.csv", people), tenant)
    wrong_rows = [[*p[:3], "Wrong", *p[4:]] for p in people]
    wrong = await _apply(conn, write_csv(tmp_path / "b.csv", wrong_rows), tenant)

    restoring, restored = await _timed_undo(conn, wrong)
    deactivating, deactivated = await _timed_undo(conn, first)

    print(f"\nundo of {ROWS:,} updated people: {restoring:.1f} s; of {ROWS:,} created: {deactivating:.1f} s")
    assert restored["restored"] == ROWS and deactivated["deactivated"] == ROWS
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM people"
            " WHERE tenant_id = $1 AND job_title = 'Old' AND status = 'deactivated'",
            tenant,
        )
        == ROWS
    )
