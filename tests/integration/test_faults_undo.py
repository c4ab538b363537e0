"""Fault drill: a worker killed in the middle of an undo; resume finishes it exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_undo import people
from tests.support.drills import Drill, drill_rows, sigkill_group
from tests.support.imports import wait_final, write_csv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROWS = 300
# Every write of a person takes this long once the wrong import is in: the
# undo then lasts seconds, so the kill lands in its middle on any machine.
SLOW_PEOPLE = """
CREATE OR REPLACE FUNCTION drill_slow_people() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(0.01);
    RETURN NEW;
END $$;
CREATE TRIGGER drill_slow_people BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION drill_slow_people();
"""


@pytest.fixture
def drill(drill_database: str, redis_url: str, tmp_path: Path) -> Iterator[Drill]:
    world = Drill(drill_database, redis_url, tmp_path, UNDO_BATCH_SIZE="10")
    world.worker.start()
    yield world
    world.close()


async def wait_undo_moving(conn: Any, undo_id: int, timeout: float = 60) -> dict[str, Any]:
    """Once some of the undo's batches have committed, and before it ends: its progress."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await conn.fetchrow("SELECT phase, after_key FROM undos WHERE import_id = $1", undo_id)
        if row is not None and (row["phase"] != "created" or row["after_key"] > 0):
            return dict(row)
        await asyncio.sleep(0.02)
    raise AssertionError(f"undo {undo_id} never moved")


async def test_a_worker_killed_mid_undo_then_resume_finishes_it(
    drill: Drill, dconn: Any, tmp_path: Path
) -> None:
    tenant, domain = f"undo-{uuid.uuid4().hex[:8]}", f"undo-{uuid.uuid4().hex[:8]}.example.com"
    everyone = drill_rows(domain, ROWS)
    await wait_final(dconn, drill.submit(write_csv(tmp_path / "a.csv", everyone), tenant, invites="none"))
    before = await people(dconn, tenant)
    # The wrong file, in sync mode: 60 people left out (swept), the rest retitled, 20 new ones.
    wrong_rows = [[*row[:3], "Wrong title", *row[4:]] for row in everyone[60:]] + drill_rows(
        "new-" + domain, 20, teams=2
    )
    wrong = drill.submit(write_csv(tmp_path / "b.csv", wrong_rows), tenant, "sync", invites="none")
    assert (await wait_final(dconn, wrong))["deactivated"] == 60
    await dconn.execute(SLOW_PEOPLE)
    try:
        undo_id = int(drill.cli("undo", wrong, "--json").stdout.split('"id": ')[1].split(",")[0])
        await wait_undo_moving(dconn, undo_id)
        sigkill_group(drill.worker)
        progress = await dconn.fetchrow("SELECT * FROM undos WHERE import_id = $1", undo_id)
        assert progress["phase"] != "finished", "the worker was killed after the undo: nothing was tested"

        drill.worker.restart()
        message = drill.cli("resume", undo_id).stdout
        status = await wait_final(dconn, undo_id, timeout=180)
    finally:
        await dconn.execute("DROP TRIGGER drill_slow_people ON people")

    assert "finalizing step re-sent" in message, message
    assert status["state"] == "done"
    counts = status["undo"]
    assert (counts["restored"], counts["deactivated"], counts["reactivated"], counts["kept"]) == (
        240,
        20,
        60,
        0,
    )
    after = await people(dconn, tenant)
    assert {e: p for e, p in after.items() if e in before} == before
    assert {p["status"] for e, p in after.items() if e not in before} == {"deactivated"}
