"""Recording an import takes as long after another tenant's import as on a fresh database.

The statements that record an import are planned before any statistics know its
rows. After an earlier, small import of someone else had been finalized (its
ANALYZE taken), the planner expected one row for the new import and chose
nested loops over its rows: recording 150,000 rows once spent over 7 minutes
marking repeated e-mails. Times are compared, never asserted: the same file is
recorded on a fresh database and after the small import, and the second may
take at most twice as long.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

import schema
from core.db import connect
from core.intake.reading import open_source
from core.intake.submit import ImportRequest, record_import
from producer.demo.sample import people_rows, write_people_csv
from tests.support.environment import SERVER_URL
from tests.support.imports import apply_import, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

LARGE_ROWS = 100_000
SMALL_ROWS = 1_000
# Every tenth row repeats an earlier row's e-mail: what a nested loop over the
# import's rows and its repeats makes quadratic.
REPEAT_EVERY = 10


@pytest.fixture
async def fresh_databases() -> AsyncIterator[tuple[str, str]]:
    """Two migrated databases of this test's own: one for history, one kept fresh."""
    names = [f"bulk_import_plans_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin = await asyncpg.connect(SERVER_URL)
    urls = []
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
            url = SERVER_URL.rsplit("/", 1)[0] + "/" + name
            conn = await connect(url)
            try:
                await schema.migrate(conn)
            finally:
                await conn.close()
            urls.append(url)
        yield urls[0], urls[1]
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def large_file(path: Path) -> Path:
    """LARGE_ROWS template rows, every REPEAT_EVERY-th repeating an earlier e-mail."""
    rows = list(people_rows(LARGE_ROWS, seed=11, domain="large.example.com"))
    for index in range(REPEAT_EVERY, LARGE_ROWS, REPEAT_EVERY):
        rows[index][2] = rows[index // 2][2]
    return write_csv(path, rows)


async def recording_seconds(database_url: str, path: Path, tenant: str) -> tuple[float, int]:
    """Seconds the producer takes to record ``path``; and the import's invalid rows."""
    conn = await connect(database_url)
    try:
        started = time.monotonic()
        with open_source(path) as source:
            import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
        seconds = time.monotonic() - started
        invalid: int = await conn.fetchval("SELECT invalid_rows FROM imports WHERE id = $1", import_id)
    finally:
        await conn.close()
    return seconds, invalid


async def test_recording_after_a_small_import_is_as_fast_as_on_a_fresh_database(
    fresh_databases: tuple[str, str], tmp_path: Path
) -> None:
    history_url, fresh_url = fresh_databases
    small = write_people_csv(tmp_path / "small.csv", SMALL_ROWS, seed=5)
    large = large_file(tmp_path / "large.csv")

    conn = await connect(history_url)
    try:
        outcome = await apply_import(conn, small, "tenant-small")
        assert outcome["state"] == "done"
        # What finalizing a small import leaves the planner: statistics of that import alone.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()

    fresh_seconds, fresh_invalid = await recording_seconds(fresh_url, large, "tenant-large")
    history_seconds, history_invalid = await recording_seconds(history_url, large, "tenant-large")

    repeats = len(range(REPEAT_EVERY, LARGE_ROWS, REPEAT_EVERY))
    assert fresh_invalid == history_invalid == repeats
    assert history_seconds <= 2 * fresh_seconds, (
        f"recording {LARGE_ROWS} rows took {history_seconds:.1f} s after a small import"
        f" and {fresh_seconds:.1f} s on a fresh database"
    )
