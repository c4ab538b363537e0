"""Fault drill: PostgreSQL down for longer than the rows' retries fails nothing.

A connection error is not the row's fault. With the database stopped long
enough for every row message caught by the outage to use up its retries, the
rows stay pending (``row.left_pending``), and once PostgreSQL is back the
workers' housekeeping finds the import stalled and resumes it: zero failed
rows, every row applied once, and the same end state as a clean import of
the same file. The worker runs with small retry, backoff and stall settings
so this takes seconds, on a private cluster (never the shared one).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.db import connect
from tests.support.drills import (
    Drill,
    PrivateCluster,
    check_invariants,
    drill_rows,
    outcome,
    shared_server_database,
    wait_invites_settled,
    wait_rows_settled,
)
from tests.support.imports import wait_final, write_csv
from tests.support.services import MailServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("smtp_server")]

ROWS = 400
# Two retries 100 ms apart: a row gives up within a second of the database
# going away, instead of after about two minutes with the defaults.
OUTAGE_WORKER = {
    "ROW_BATCH_SIZE": "10",
    "ROW_MAX_RETRIES": "2",
    "ROW_MIN_BACKOFF_MS": "100",
    "STALL_AFTER_S": "3",
    "HOUSEKEEPING_INTERVAL_S": "1",
}


class StoppableCluster(PrivateCluster):
    """A private cluster that can be stopped and started again with its data."""

    def halt(self) -> None:
        """A fast shutdown: every client connection is cut, and none is accepted until ``resume``."""
        self._ctl("stop", "-m", "fast")

    def resume(self) -> None:
        self._ctl("start")


@pytest.fixture
def cluster_database() -> Iterator[tuple[StoppableCluster, str]]:
    cluster = StoppableCluster()
    cluster.start()
    try:
        with shared_server_database(cluster.url, "bulk_import_drill") as url:
            yield cluster, url
    finally:
        cluster.stop()


def log_events(drill: Drill, event: str, import_id: int) -> list[dict[str, Any]]:
    """The worker's JSON log lines for ``event`` about ``import_id``."""
    found = []
    for line in drill.worker_log().splitlines():
        if f'"{event}"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == event and entry.get("import_id") == import_id:
            found.append(entry)
    return found


async def test_postgres_down_longer_than_the_row_retries_fails_no_row(
    cluster_database: tuple[StoppableCluster, str], redis_url: str, tmp_path: Path, smtp_server: MailServer
) -> None:
    cluster, url = cluster_database
    world = Drill(url, redis_url, tmp_path, **OUTAGE_WORKER)
    world.worker.start()
    conn = await connect(url)
    try:
        tag = uuid.uuid4().hex[:8]
        clean, fault = f"clean-{tag}", f"fault-{tag}"
        clean_domain, fault_domain = f"{clean}.example.com", f"{fault}.example.com"
        clean_id = world.submit(write_csv(tmp_path / "clean.csv", drill_rows(clean_domain, ROWS)), clean)
        await wait_final(conn, clean_id, timeout=120)
        await wait_invites_settled(conn, clean)
        expected = await outcome(conn, clean, clean_domain, [clean_id])

        import_id = world.submit(write_csv(tmp_path / "fault.csv", drill_rows(fault_domain, ROWS)), fault)
        await wait_rows_settled(conn, import_id, 60)
        await conn.close()
        await asyncio.to_thread(cluster.halt)

        def every_row_message_gave_up() -> bool:
            # The row queue holds nothing more (ready, delayed or in a
            # worker's hands): every row message caught by the outage has used
            # up its retries, and Retries has sent its row_gave_up message.
            # PostgreSQL comes back at once, before those have all run:
            # whatever they do, they may find the database answering again.
            return world.queued_messages("rows") == 0

        wait_until(every_row_message_gave_up, timeout=180, what="the row messages to run out of retries")
        await asyncio.to_thread(cluster.resume)
        conn = await connect(url)

        status = await wait_final(conn, import_id, timeout=180)
        await wait_invites_settled(conn, fault)

        assert status["state"] == "done" and status["rows"]["failed"] == 0, status
        assert status["rows"]["created"] == ROWS, status
        assert await outcome(conn, fault, fault_domain, [import_id]) == expected
        await check_invariants(conn, fault, world, smtp_server)
        # The rows left pending were applied after the outage, by the recovery.
        left_pending = {entry["row"] for entry in log_events(world, "row.left_pending", import_id)}
        assert log_events(world, "row.gave_up", import_id) == []
        assert log_events(world, "import.stalled", import_id), "housekeeping never resumed the import"
        applied = await conn.fetchval(
            "SELECT count(*) FROM import_rows WHERE import_id = $1 AND row_number = ANY($2::int[])"
            " AND status IN ('created', 'updated', 'unchanged')",
            import_id,
            sorted(left_pending),
        )
        assert applied == len(left_pending) > 0
    finally:
        await conn.close()
        world.close()
