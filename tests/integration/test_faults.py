"""Fault drills: crashes, lost messages and restarts change nothing but the time it takes.

Each drill imports a file cleanly, then imports the same file for another
tenant while something breaks, and compares the two: same export, same
counts, same invites, and the invariants of ``check_invariants``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.db import connect
from producer.reports import import_status
from tests.support.brokers import redis_only
from tests.support.drills import (
    Drill,
    PrivateCluster,
    check_invariants,
    create_database,
    drill_rows,
    hold_row_writes,
    outcome,
    paused,
    received,
    shared_server_database,
    sigkill_group,
    slow_row_settling,
    wait_invites_settled,
    wait_rows_settled,
)
from tests.support.imports import wait_final, write_csv
from tests.support.services import MailServer, wait_until

# A drill is two imports, a fault and a recovery: on a loaded two-core machine
# that can outlast the suite's five-minute default.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("smtp_server")]

ROWS = 400


@pytest.fixture(scope="module")
def drill_database(drill_database: str) -> str:
    """The module's drill database, where settling a row takes 5 ms more: batches of
    ten on a broker that pushes every row at once (RabbitMQ) would otherwise settle
    400 rows between a drill's check and its fault."""
    slow_row_settling(drill_database, 5)
    return drill_database


@pytest.fixture
def drill(drill_database: str, redis_url: str, tmp_path: Path) -> Iterator[Drill]:
    """A drill world with its worker started (slowed down so a fault lands mid-import)."""
    world = Drill(drill_database, redis_url, tmp_path, ROW_BATCH_SIZE="10")
    world.worker.start()
    yield world
    world.close()


def tenants() -> tuple[str, str, str, str]:
    """A clean tenant and a faulted one, each with its own e-mail domain."""
    tag = uuid.uuid4().hex[:8]
    return f"clean-{tag}", f"fault-{tag}", f"clean-{tag}.example.com", f"fault-{tag}.example.com"


async def clean_run(drill: Drill, conn: Any, tmp_path: Path, tenant: str, domain: str) -> dict[str, Any]:
    path = write_csv(tmp_path / f"{tenant}.csv", drill_rows(domain, ROWS))
    import_id = drill.submit(path, tenant)
    await wait_final(conn, import_id, timeout=120)
    await wait_invites_settled(conn, tenant)
    return await outcome(conn, tenant, domain, [import_id])


async def test_a_worker_killed_mid_import_and_started_again(
    drill: Drill, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    clean, fault, clean_domain, fault_domain = tenants()
    expected = await clean_run(drill, dconn, tmp_path, clean, clean_domain)

    import_id = drill.submit(write_csv(tmp_path / "f.csv", drill_rows(fault_domain, ROWS)), fault)
    await wait_rows_settled(dconn, import_id, 60)
    # Writes held while the worker dies, so the rows it had in its hands,
    # committed or not, cannot settle between the count and the kill.
    async with dconn.transaction():
        await hold_row_writes(dconn)
        pending = await dconn.fetchval(
            "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status = 'pending'", import_id
        )
        sigkill_group(drill.worker)
    assert pending > 0, "the worker was killed after the import had finished: nothing was tested"
    # The dead worker had prefetched the rows: they come back only through the
    # broker's maintenance once its heartbeat is older than HEARTBEAT_TIMEOUT_MS.
    drill.worker.restart()

    await wait_final(dconn, import_id, timeout=120)
    await wait_invites_settled(dconn, fault)
    assert await outcome(dconn, fault, fault_domain, [import_id]) == expected
    await check_invariants(dconn, fault, drill, smtp_server)


@redis_only  # Redis losing its data; RabbitMQ's durable queues keep theirs over a restart
async def test_redis_emptied_mid_import_then_resume(
    drill_database: str, redis_url: str, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    # A small prefetch, so most row messages are still in Redis when it is emptied.
    world = Drill(drill_database, redis_url, tmp_path, ROW_BATCH_SIZE="10", WORKER_PREFETCH="20")
    try:
        world.worker.start()
        clean, fault, clean_domain, fault_domain = tenants()
        expected = await clean_run(world, dconn, tmp_path, clean, clean_domain)

        # The rows are queued while the worker is paused, and its writes are
        # held from before it goes on until Redis is emptied: it takes its
        # prefetch and stops at its first batch, so the rows pending are all
        # but what its hands hold, however fast it would otherwise be.
        async with dconn.transaction():
            with paused(world.worker):
                import_id = world.submit(write_csv(tmp_path / "f.csv", drill_rows(fault_domain, ROWS)), fault)
                await hold_row_writes(dconn)
            wait_until(lambda: world.broker.held_by_workers() > 0, timeout=30, what="the worker's fetch")
            assert world.clear_redis() > 0
            pending = (await import_status(dconn, import_id))["rows"]["pending"]

        # More rows pending than the workers can hold (2 processes, prefetch 20
        # per queue): some messages were lost with Redis, so the import
        # cannot end without the resume.
        assert pending > 80
        message = world.cli("resume", import_id).stdout

        assert "re-sent" in message, message
        await wait_final(dconn, import_id, timeout=120)
        await wait_invites_settled(dconn, fault)
        assert await outcome(dconn, fault, fault_domain, [import_id]) == expected
        await check_invariants(dconn, fault, world, smtp_server)
    finally:
        world.close()


async def test_a_stalled_import_is_reported_and_resumed_by_housekeeping(
    drill_database: str, redis_url: str, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    world = Drill(drill_database, redis_url, tmp_path, STALL_AFTER_S="2")
    try:
        clean, fault, clean_domain, fault_domain = tenants()
        world.worker.start()
        expected = await clean_run(world, dconn, tmp_path, clean, clean_domain)
        world.worker.stop()
        # Recorded and started, but every message is lost before a worker sees it.
        import_id = world.submit(write_csv(tmp_path / "f.csv", drill_rows(fault_domain, ROWS)), fault)
        assert world.clear_redis() > 0
        world.worker.restart()

        await wait_final(dconn, import_id, timeout=120)
        await wait_invites_settled(dconn, fault)
        assert await outcome(dconn, fault, fault_domain, [import_id]) == expected
        log = world.worker_log()
        assert '"import.stalled"' in log and f'"import_id": {import_id}' in log, log[-2000:]

        # Finalizing, with its message lost (a worker died between claiming the
        # step and sending it): found and finished the same way.
        await dconn.execute("UPDATE imports SET state = 'finalizing' WHERE id = $1", import_id)
        assert (await wait_final(dconn, import_id, timeout=60))["state"] == "done"
        await check_invariants(dconn, fault, world, smtp_server)
    finally:
        world.close()


@pytest.fixture
def private_cluster() -> Iterator[tuple[PrivateCluster, str]]:
    """A PostgreSQL cluster of the drill's own (restarting the shared one would
    break every other test run on the machine), with a migrated database."""
    cluster = PrivateCluster()
    cluster.start()
    try:
        with shared_server_database(cluster.url, "bulk_import_drill") as url:
            yield cluster, url
    finally:
        cluster.stop()


async def test_postgres_restarted_mid_import(
    private_cluster: tuple[PrivateCluster, str], redis_url: str, tmp_path: Path, smtp_server: MailServer
) -> None:
    cluster, url = private_cluster
    world = Drill(url, redis_url, tmp_path, ROW_BATCH_SIZE="10")
    world.worker.start()
    conn = await connect(url)
    try:
        clean, fault, clean_domain, fault_domain = tenants()
        expected = await clean_run(world, conn, tmp_path, clean, clean_domain)

        # The rows are queued while the worker is paused, and its writes are
        # held from before it goes on until the restart cuts this session (and
        # its lock), so rows are pending at the fault however fast it would be.
        await conn.execute("BEGIN")
        with paused(world.worker):
            import_id = world.submit(write_csv(tmp_path / "f.csv", drill_rows(fault_domain, ROWS)), fault)
            await hold_row_writes(conn)
        wait_until(lambda: world.broker.held_by_workers() > 0, timeout=30, what="the worker's fetch")
        pending = await conn.fetchval(
            "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status = 'pending'", import_id
        )
        await asyncio.to_thread(cluster.restart)
        conn.terminate()
        conn = await connect(url)
        assert pending > 0, "PostgreSQL restarted after the import had finished: nothing was tested"

        await wait_final(conn, import_id, timeout=120)
        await wait_invites_settled(conn, fault)
        assert await outcome(conn, fault, fault_domain, [import_id]) == expected
        await check_invariants(conn, fault, world, smtp_server)
    finally:
        await conn.close()
        world.close()


async def test_the_mail_server_down_for_a_while_then_back(
    drill_database: str, redis_url: str, dconn: Any, tmp_path: Path
) -> None:
    from aiosmtpd.controller import Controller

    from tests.support.services import free_port

    port = free_port()
    mail = MailServer()
    world = Drill(drill_database, redis_url, tmp_path, SMTP_URL=f"smtp://127.0.0.1:{port}")
    controller = Controller(mail, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        world.worker.start()
        clean, fault, clean_domain, fault_domain = tenants()
        expected = await clean_run(world, dconn, tmp_path, clean, clean_domain)
        controller.stop()

        import_id = world.submit(write_csv(tmp_path / "f.csv", drill_rows(fault_domain, ROWS)), fault)
        await wait_final(dconn, import_id, timeout=120)

        def refused() -> bool:
            return "could not be reached" in world.worker_log()

        wait_until(refused, timeout=60, what="a send to be refused while the server is down")
        controller = Controller(mail, hostname="127.0.0.1", port=port)
        controller.start()

        await wait_invites_settled(dconn, fault, timeout=120)
        assert await outcome(dconn, fault, fault_domain, [import_id]) == expected
        await check_invariants(dconn, fault, world, mail)
        counts = received(mail)
        assert [counts[f"p{i}@{fault_domain}"] for i in range(ROWS)] == [1] * ROWS
    finally:
        controller.stop()
        world.close()


@redis_only  # sends the duplicates with a plain RedisBroker
async def test_finalize_and_the_sweeper_delivered_twice(
    drill: Drill, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=drill.redis_url, namespace=drill.namespace)

    def deliver_again(actor: str, import_id: int) -> None:
        message = Message(queue_name="imports", actor_name=actor, args=(import_id,), kwargs={}, options={})
        broker.enqueue(message)

    results = []
    clean, fault, clean_domain, fault_domain = tenants()
    for tenant, domain, twice in ((clean, clean_domain, False), (fault, fault_domain, True)):
        everyone = drill_rows(domain, 300)
        first = drill.submit(write_csv(tmp_path / f"{tenant}-all.csv", everyone), tenant)
        await wait_final(dconn, first)
        # The first import's invites settle before the sync: otherwise the runs
        # race its e-mails against the sweep (an invite swept before its send
        # is rightly cancelled), and the clean and faulted runs differ by timing.
        await wait_invites_settled(dconn, tenant)
        # A sync of all but 40: the sweeper deactivates them.
        import_id = drill.submit(write_csv(tmp_path / f"{tenant}-sync.csv", everyone[40:]), tenant, "sync")
        if twice:
            await wait_rows_settled(dconn, import_id, 260)
            for _ in range(2):
                deliver_again("finalize_import", import_id)
        await wait_final(dconn, import_id)
        if twice:
            for _ in range(2):
                deliver_again("finalize_import", import_id)
                deliver_again("sweep_missing_people", import_id)
            wait_until(lambda: drill.queued_messages("imports") == 0, timeout=60, what="the duplicates")
        await wait_invites_settled(dconn, tenant)
        results.append(await outcome(dconn, tenant, domain, [first, import_id]))
        await check_invariants(dconn, tenant, drill, smtp_server)
    broker.close()

    assert results[0] == results[1]
    assert results[1]["imports"][1]["deactivated"] == 40


async def test_two_imports_of_one_tenant_submitted_at_once(
    drill: Drill, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    clean, fault, clean_domain, fault_domain = tenants()

    def files(tenant: str, domain: str) -> list[Path]:
        rows = drill_rows(domain, 400)
        # Overlapping files: the second renames 100 people of the first.
        second = [[row[0], "Renamed", *row[2:]] for row in rows[200:300]] + rows[300:]
        first = write_csv(tmp_path / f"{tenant}-a.csv", rows[:300])
        return [first, write_csv(tmp_path / f"{tenant}-b.csv", second)]

    runs = [drill.submit_popen(path, fault) for path in files(fault, fault_domain)]
    fault_ids = [int(run.communicate(timeout=120)[0].strip()) for run in runs]
    for import_id in fault_ids:
        await wait_final(dconn, import_id, timeout=120)
    await wait_invites_settled(dconn, fault)
    # Whichever was recorded first ran first, the other after it ended: the
    # same as submitting them one after the other in that order.
    clean_files = files(clean, clean_domain)
    clean_ids = [0, 0]
    for index in sorted(range(2), key=lambda i: fault_ids[i]):
        clean_ids[index] = drill.submit(clean_files[index], clean)
        await wait_final(dconn, clean_ids[index], timeout=120)
    await wait_invites_settled(dconn, clean)

    order = sorted(range(2), key=lambda i: fault_ids[i])
    expected = await outcome(dconn, clean, clean_domain, [clean_ids[i] for i in order])
    assert await outcome(dconn, fault, fault_domain, [fault_ids[i] for i in order]) == expected
    first, second = sorted(fault_ids)
    started = await dconn.fetchval("SELECT started_at FROM imports WHERE id = $1", second)
    assert started >= await dconn.fetchval("SELECT finished_at FROM imports WHERE id = $1", first)
    await check_invariants(dconn, fault, drill, smtp_server)


async def test_the_same_file_submitted_twice(
    drill: Drill, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    tenant, _, domain, _ = tenants()
    path = write_csv(tmp_path / "people.csv", drill_rows(domain, 300))

    runs = [drill.submit_popen(path, tenant) for _ in range(2)]
    first, second = sorted(int(run.communicate(timeout=120)[0].strip()) for run in runs)

    for import_id in (first, second):
        await wait_final(dconn, import_id, timeout=120)
    await wait_invites_settled(dconn, tenant)
    done = [await wait_final(dconn, import_id) for import_id in (first, second)]
    assert [d["state"] for d in done] == ["done", "done"]
    assert (done[0]["rows"]["created"], done[1]["rows"]["unchanged"]) == (300, 300)
    assert done[0]["invites"]["sent"] == 300 and done[1]["invites"]["sent"] == 0
    await check_invariants(dconn, tenant, drill, smtp_server)
    counts = received(smtp_server)
    assert [counts[f"p{i}@{domain}"] for i in range(300)] == [1] * 300


async def test_a_worker_started_while_postgres_is_down_waits_for_it(
    redis_url: str, tmp_path: Path, smtp_server: MailServer
) -> None:
    cluster = PrivateCluster()
    # A password in the URL (trust authentication ignores it): it must never be logged.
    url = f"postgresql://postgres:s3cret-db-pw@127.0.0.1:{cluster.port}/bulk_import_drill"
    world = Drill(url, redis_url, tmp_path)
    try:
        world.worker.spawn()
        wait_until(lambda: "worker.pool.waiting" in world.worker_log(), timeout=60, what="the worker to wait")
        await asyncio.to_thread(cluster.start)
        # Dropped with the whole cluster at the end.
        await create_database(cluster.url, "bulk_import_drill")
        # Booted once the database answers: each process opens its pool.
        wait_until(lambda: world.worker_log().count("worker.pool.opened") == 2, timeout=60, what="pools")
        tenant, _, domain, _ = tenants()
        import_id = world.submit(write_csv(tmp_path / "a.csv", drill_rows(domain, 50)), tenant)
        conn = await connect(url)
        try:
            assert (await wait_final(conn, import_id, timeout=60))["state"] == "done"
            await wait_invites_settled(conn, tenant)
            await check_invariants(conn, tenant, world, smtp_server)
        finally:
            await conn.close()
        world.worker.stop()
        assert "s3cret-db-pw" not in world.worker_log()
    finally:
        world.close()
        cluster.stop()
