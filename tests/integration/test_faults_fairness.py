"""Fairness drill: a small import of one tenant is not starved by a large one of another.

All tenants share the ``rows`` queue. A large import of tenant A runs; once it
is well under way, a 40-row import of tenant B is submitted: B must be done
while A is still running (A keeps at most ``IMPORT_MAX_IN_FLIGHT`` rows ahead
of B's in the queue), and both must end exactly as clean runs of the same
files do.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SERVER_URL, TEST_DATABASE
from tests.integration.drills import (
    Drill,
    check_invariants,
    drill_rows,
    outcome,
    shared_server_database,
    wait_rows_settled,
)
from tests.integration.support import wait_final, write_csv
from worker.db import connect

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1_200), pytest.mark.usefixtures("smtp_server")]

# Large enough that A runs for a minute or more on a loaded two-core machine,
# several times IMPORT_MAX_IN_FLIGHT (5,000): B finds at most that many of A's
# rows ahead of its own, while A has far more still to go.
LARGE = 24_000
SMALL = 40
UNDER_WAY = 2_000
# A whole import of LARGE rows, on a loaded machine, with room to spare.
LARGE_TIMEOUT = 600


@pytest.fixture(scope="module")
def fairness_database(database_url: str) -> Iterator[str]:
    """A database for this module's drill, apart from the session's."""
    with shared_server_database(SERVER_URL, f"{TEST_DATABASE}_fairness") as url:
        yield url


@pytest.fixture
def world(fairness_database: str, redis_url: str, tmp_path: Path) -> Iterator[Drill]:
    """The drill's worker with the Procfile's threads (the default cap, the default batches)."""
    drill = Drill(fairness_database, redis_url, tmp_path, WORKER_THREADS="128")
    drill.worker.start()
    yield drill
    drill.close()


@pytest.fixture
async def dconn(fairness_database: str) -> Any:
    conn = await connect(fairness_database)
    yield conn
    await conn.close()


async def run_clean(world: Drill, conn: Any, path: Path, tenant: str, domain: str) -> dict[str, Any]:
    import_id = world.submit(path, tenant, invites="none")
    await wait_final(conn, import_id, timeout=LARGE_TIMEOUT)
    return await outcome(conn, tenant, domain, [import_id])


async def test_a_small_import_is_done_while_a_large_one_of_another_tenant_runs(
    world: Drill, dconn: Any, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    domains = {name: f"{name}-{tag}.example.com" for name in ("a", "b", "clean-a", "clean-b")}
    files = {
        name: write_csv(tmp_path / f"{name}.csv", drill_rows(domain, LARGE if name.endswith("a") else SMALL))
        for name, domain in domains.items()
    }
    expected_b = await run_clean(world, dconn, files["clean-b"], f"clean-b-{tag}", domains["clean-b"])
    expected_a = await run_clean(world, dconn, files["clean-a"], f"clean-a-{tag}", domains["clean-a"])

    large = world.submit(files["a"], f"a-{tag}", invites="none")
    await wait_rows_settled(dconn, large, UNDER_WAY, timeout=LARGE_TIMEOUT)
    submitted = time.monotonic()
    small = world.submit(files["b"], f"b-{tag}", invites="none")
    b_status = await wait_final(dconn, small, timeout=LARGE_TIMEOUT)
    b_seconds = time.monotonic() - submitted
    a_state, a_pending = await dconn.fetchrow(
        "SELECT i.state, (SELECT count(*) FROM import_rows r"
        " WHERE r.import_id = i.id AND r.status = 'pending') FROM imports i WHERE i.id = $1",
        large,
    )

    assert b_status["state"] == "done"
    assert a_state == "running" and a_pending > 0, (
        f"B took {b_seconds:.1f}s and A was {a_state} with {a_pending} rows pending: B waited for A"
    )
    await wait_final(dconn, large, timeout=LARGE_TIMEOUT)
    assert await outcome(dconn, f"a-{tag}", domains["a"], [large]) == expected_a
    assert await outcome(dconn, f"b-{tag}", domains["b"], [small]) == expected_b
    for tenant in (f"a-{tag}", f"b-{tag}"):
        await check_invariants(dconn, tenant, world)
