"""Fault drills: acknowledgements sent in batches (``core.queues.redis._AckBuffer``).

A worker acknowledges its finished messages in one Redis call a couple of
milliseconds after they finished, not one call per message. These drills
hold that window open for ten minutes (``ACK_FLUSH_DELAY_MS``), so every
message the worker finishes is committed in PostgreSQL and still
unacknowledged in Redis, and then:

- kill the worker: its messages come back once its heartbeat times out, a
  new worker runs them again, and that changes nothing (no row settled
  again, no person written again, no second e-mail);
- stop it gracefully: it acknowledges everything before it exits.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from core import queues
from tests.support.brokers import redis_only
from tests.support.drills import (
    Drill,
    check_invariants,
    drill_rows,
    sigkill_group,
    wait_invites_settled,
)
from tests.support.imports import wait_final, write_csv
from tests.support.services import MailServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("smtp_server"), redis_only]

ROWS = 300
HELD_ACKS = {"ACK_FLUSH_DELAY_MS": "600000"}


async def run_import(world: Drill, conn: Any, tmp_path: Path) -> tuple[str, int]:
    tenant = f"acks-{uuid.uuid4().hex[:8]}"
    path = write_csv(tmp_path / f"{tenant}.csv", drill_rows(f"{tenant}.example.com", ROWS))
    import_id = world.submit(path, tenant)
    assert (await wait_final(conn, import_id, timeout=120))["state"] == "done"
    await wait_invites_settled(conn, tenant)
    return tenant, import_id


async def stored(conn: Any, tenant: str, import_id: int) -> dict[str, Any]:
    """Everything a second run of a message could change, with the times it was written."""
    return {
        "people": await conn.fetch(
            "SELECT id, email, job_title, primary_team_id, status, updated_at, last_import_id"
            " FROM people WHERE tenant_id = $1 ORDER BY id",
            tenant,
        ),
        "rows": await conn.fetch(
            "SELECT row_number, status, person_id, settled_at FROM import_rows WHERE import_id = $1"
            " ORDER BY row_number",
            import_id,
        ),
        "counters": await conn.fetch(
            "SELECT * FROM import_counters WHERE import_id = $1 ORDER BY shard", import_id
        ),
        "import": await conn.fetchrow("SELECT state, finished_at FROM imports WHERE id = $1", import_id),
        "teams": await conn.fetch(
            "SELECT id, manager_id FROM teams WHERE tenant_id = $1 ORDER BY id", tenant
        ),
        "invites": await conn.fetch(
            "SELECT id, person_id, status, sent_at FROM invites WHERE tenant_id = $1 ORDER BY id", tenant
        ),
    }


def unacknowledged(world: Drill) -> dict[str, int]:
    return {queue: world.queued_messages(queue) for queue in queues.ALL_QUEUES}


async def test_a_worker_killed_before_flushing_its_acknowledgements(
    drill_database: str, redis_url: str, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    world = Drill(drill_database, redis_url, tmp_path, **HELD_ACKS)
    try:
        world.worker.start()
        tenant, import_id = await run_import(world, dconn, tmp_path)
        before = await stored(dconn, tenant, import_id)
        held = unacknowledged(world)
        # Every row and invite was committed, and none of their messages acknowledged
        # (an invite held back by the shared rate was sent again as a new message).
        assert held[queues.ROWS] == ROWS and held[queues.INVITES] >= ROWS, held

        sigkill_group(world.worker)
        world.worker.env.update(ACK_FLUSH_DELAY_MS="2")
        world.worker.restart()
        # Back once the dead worker's heartbeat is older than HEARTBEAT_TIMEOUT_MS, run again, acknowledged.
        wait_until(lambda: not any(unacknowledged(world).values()), timeout=120, what="the redeliveries")

        assert await stored(dconn, tenant, import_id) == before
        await check_invariants(dconn, tenant, world, smtp_server)
    finally:
        world.close()


async def test_a_graceful_stop_acknowledges_everything_first(
    drill_database: str, redis_url: str, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    # A heartbeat timeout of ten minutes: nothing can come back by redelivery during the drill.
    world = Drill(drill_database, redis_url, tmp_path, HEARTBEAT_TIMEOUT_MS="600000", **HELD_ACKS)
    try:
        world.worker.start()
        await run_import(world, dconn, tmp_path)
        assert unacknowledged(world)[queues.ROWS] == ROWS

        world.worker.stop()  # SIGTERM to the main process, and wait

        assert unacknowledged(world) == dict.fromkeys(queues.ALL_QUEUES, 0)
        in_hand = [key for key in world.redis.scan_iter(match=f"{world.namespace}:__acks__.*")]
        assert in_hand == [], "a stopped worker still holds messages"
    finally:
        world.close()
