"""Multi-host drill: two worker hosts, one cut off from the network mid-import, then back.

Each worker host is a network namespace of its own (``tests.support.hosts``)
running the Procfile's worker line; PostgreSQL, the broker (the run's,
``TEST_BROKER``) and the SMTP server are on this host, reached through the
drill's own links and addresses. The other host's traffic is 50 ms late
(the drill proxy's delay: this kernel has no ``netem``). Mid-import the
first host's link goes down for longer than the heartbeat timeout, so the
broker gives what that host held to the other one; then the link comes back
and the cut host's late work (its open transactions, its acknowledgements)
arrives. What must hold: every row applied once, every invite sent once,
the import done, the cut host's messages taken over while it was still cut.

It prints what it saw: seconds from the cut until the broker had taken back
what the cut host held, and how many messages that was.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.brokers import HostHoldings, holdings
from tests.support.drills import Drill, check_invariants, drill_rows, wait_invites_settled, wait_rows_settled
from tests.support.environment import SMTP_PORT, TEST_BROKER
from tests.support.hosts import worker_hosts
from tests.support.imports import wait_final, write_csv
from tests.support.services import MailServer, WorkerProcess, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None, reason="network namespaces need root and iproute2"
    ),
]

ROWS = 600
HEARTBEAT_TIMEOUT_MS = 5_000  # tests.support.environment's
CUT_AT_LEAST_S = 3 * HEARTBEAT_TIMEOUT_MS / 1000


def _on(url: str, host: str) -> str:
    parts = urlsplit(url)
    return url.replace(f"@{parts.hostname}:", f"@{host}:").replace(f"//{parts.hostname}:", f"//{host}:")


async def test_a_worker_host_cut_off_mid_import_loses_and_doubles_nothing(
    drill_database: str, redis_url: str, dconn: Any, tmp_path: Path, smtp_server: MailServer
) -> None:
    world = Drill(drill_database, redis_url, tmp_path, ROW_BATCH_SIZE="10")
    broker_port = urlsplit(world.broker.url).port or (5672 if TEST_BROKER == "rabbitmq" else 6379)
    ports = [urlsplit(drill_database).port or 5432, broker_port, SMTP_PORT]
    workers: list[WorkerProcess] = []
    tagged_port = broker_port if TEST_BROKER == "rabbitmq" else -1  # see tests.support.hosts
    try:
        with worker_hosts(2, ports, tagged_port, delays_s=[0.0, 0.05]) as (cut_host, slow_host):
            try:
                for n, host in enumerate((cut_host, slow_host)):
                    worker = WorkerProcess(
                        prefix=("ip", "netns", "exec", host.namespace),
                        **{
                            **world.env,
                            "DATABASE_URL": _on(drill_database, host.services),
                            "BROKER_URL": _on(world.broker.url, host.services),
                            "SMTP_URL": f"smtp://{host.services}:{SMTP_PORT}",
                            "WORKER_PROCESSES": "1",
                            "WORKER_THREADS": "4",
                            "WORKER_PREFETCH": "50",
                            "ROW_BATCH_SIZE": "10",
                            "INVITE_RATE_PER_SECOND": "100",
                        },
                    )
                    worker.log_path = tmp_path / f"worker-{n}.log"
                    worker.start()
                    workers.append(worker)

                tenant = f"part-{uuid.uuid4().hex[:8]}"
                domain = f"{tenant}.example.com"
                import_id = world.submit(write_csv(tmp_path / "people.csv", drill_rows(domain, ROWS)), tenant)
                await wait_rows_settled(dconn, import_id, 80, timeout=120)

                cut_at = time.monotonic()
                cut_host.cut()
                time.sleep(1.5)  # the cut host's heartbeats go stale (Redis tells hosts apart by them)
                holdings_of_cut_host = HostHoldings(world.broker, cut_host.source, stale_s=1.0)
                held = holdings_of_cut_host.count()
                assert held > 0, f"the cut host held nothing: {holdings(world.broker)}"
                wait_until(
                    lambda: holdings_of_cut_host.count() == 0,
                    timeout=60,
                    what="the broker to take back what the cut host held",
                    interval=0.2,
                )
                takeover_s = time.monotonic() - cut_at
                settled_at_takeover = await _settled(dconn, import_id)
                time.sleep(max(CUT_AT_LEAST_S - (time.monotonic() - cut_at), 0) + 2)
                # The other host went on alone, on what the cut host held among the rest.
                progressed = await _settled(dconn, import_id) > settled_at_takeover
                assert progressed, "the other host did not take over"
                cut_s = time.monotonic() - cut_at
                cut_host.restore()

                back_at = time.monotonic()
                final = await wait_final(dconn, import_id, timeout=240)
                done_s = time.monotonic() - back_at
                assert final["state"] == "done", final
                await wait_invites_settled(dconn, tenant)
                print(
                    f"\npartition drill ({TEST_BROKER}): link down {cut_s:.1f}s; the cut host held {held}"
                    f" messages; taken back for the other host {takeover_s:.1f}s after the cut"
                    f" (heartbeat timeout {HEARTBEAT_TIMEOUT_MS / 1000:.0f}s); {held} messages redelivered;"
                    f" import done {done_s:.1f}s after the link came back"
                )
                created = await dconn.fetchval(
                    "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status = 'created'", import_id
                )
                assert created == ROWS
                await check_invariants(dconn, tenant, world, smtp_server)
            finally:
                for worker in workers:  # before their hosts go
                    worker.stop()
    finally:
        world.close()


async def _settled(conn: Any, import_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status NOT IN ('pending', 'invalid')",
            import_id,
        )
    )
