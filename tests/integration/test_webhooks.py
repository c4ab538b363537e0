"""Webhooks end to end: the Procfile's worker delivers to a real HTTP receiver on loopback
(``tests.support.receiver``), which checks every signature."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from asgi_lifespan import LifespanManager
from httpx import ASGITransport, AsyncClient
from standardwebhooks.webhooks import Webhook

from core import queues
from core.db import connect
from core.settings import Settings, get_settings
from core.webhooks import endpoints
from producer.control import resume_import
from producer.web.app import create_app
from producer.web.tokens import create_token
from producer.webhooks import list_deliveries, redeliver
from tests.support.imports import apply_import, person, run_import, submit, wait_final, write_csv
from tests.support.receiver import Receiver, receiving
from tests.support.services import free_port

pytestmark = pytest.mark.usefixtures("worker")


async def registered(conn: Any, tenant: str, url: str) -> endpoints.NewSecret:
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant)
    return await endpoints.add_endpoint(conn, tenant, url, None, allow_loopback=True)


def people(tenant: str, count: int) -> list[list[str]]:
    return [person(f"P{i}", "Staff", f"p{i}.{tenant}@example.com", "Ops") for i in range(count)]


async def until(predicate: Any, what: str, timeout: float = 30) -> None:
    """Wait for ``predicate()`` (a bool, or an awaitable of one) to hold."""
    deadline = time.monotonic() + timeout
    while not await _value(predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.05)


async def delivery_states(conn: Any, tenant: str) -> list[Any]:
    return await conn.fetch(
        "SELECT d.id, d.state, d.attempts, d.last_error, e.type FROM webhook_deliveries d "
        "JOIN webhook_events e ON e.id = d.event_id WHERE e.tenant_id = $1 ORDER BY d.id",
        tenant,
    )


def duration(status: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(status["finished_at"]) - datetime.fromisoformat(status["created_at"])
    ).total_seconds()


async def test_a_failing_receiver_gets_one_signed_event_per_change_and_never_slows_the_import(
    conn: Any, database_url: str, tmp_path: Path, tenant: str
) -> None:
    # 500, 500, no answer within WEBHOOK_TIMEOUT_S (1 s), then 200.
    receiver = Receiver(script=[500, 500, "hang"], hang_s=2.5)
    with receiving(receiver):
        new = await registered(conn, tenant, receiver.url)
        rotated = await endpoints.rotate_secret(conn, tenant, new.endpoint["id"], 3600)
        receiver.secrets = [new.secret, rotated]  # each signature must verify
        csv = write_csv(tmp_path / "a.csv", people(tenant, 30))

        sampled = {"most": 0, "samples": 0}
        sampler = asyncio.create_task(_most_delayed_messages(database_url, tenant, sampled))
        status = await run_import(conn, csv, tenant, external_id="crm-42", idempotency_key="key-1")
        await until(lambda: receiver.delivered(), "the delivery")
        await asyncio.sleep(1.5)  # room for a wrong second delivery to arrive
        sampler.cancel()
        ended = await asyncio.gather(sampler, return_exceptions=True)

    plain = await run_import(
        conn, write_csv(tmp_path / "b.csv", people(tenant + "-plain", 30)), tenant + "-plain"
    )
    assert status["state"] == plain["state"] == "done"
    # The import ends as fast as one without a webhook (its receiver failed meanwhile).
    assert duration(status) < duration(plain) + 2.0, (duration(status), duration(plain))
    assert [r.answered for r in receiver.received] == [500, 500, None, 200]
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    assert receiver.bad_signatures == 0
    assert all(len(r.headers["webhook-signature"].split()) == 2 for r in receiver.received)
    (delivered,) = receiver.delivered()
    for secret in (new.secret, rotated):  # the Standard Webhooks reference implementation agrees
        assert (
            Webhook(secret).verify(delivered.body, delivered.headers)["id"] == delivered.headers["webhook-id"]
        )
    event = delivered.event
    assert event["id"] == delivered.headers["webhook-id"] and event["type"] == "import.completed"
    assert event["data"]["external_id"] == "crm-42" and event["data"]["idempotency_key"] == "key-1"
    assert event["data"]["import"]["id"] == status["id"] and event["data"]["import"]["state"] == "done"
    assert event["data"]["links"]["status"] == f"/api/imports/{status['id']}"
    (row,) = await delivery_states(conn, tenant)
    assert (row["state"], row["attempts"]) == ("delivered", 4)
    # Redis held at most one delayed message for the delivery while it was retried.
    assert sampled["most"] == 1 and sampled["samples"] > 10, (sampled, ended)


async def _most_delayed_messages(database_url: str, tenant: str, sampled: dict[str, int]) -> None:
    """Count, every 20 ms, the delayed deliver_webhook messages Redis holds for the tenant's
    delivery; keep the most seen in ``sampled``."""
    client = redis.Redis.from_url(get_settings().redis_url)
    conn = await connect(database_url)
    key = f"{get_settings().redis_namespace}:{queues.WEBHOOKS}.DQ.msgs"
    sampled.update(most=0, samples=0)
    try:
        while True:
            delivery_id = await conn.fetchval(
                "SELECT d.id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id "
                "WHERE e.tenant_id = $1",
                tenant,
            )
            held = await asyncio.to_thread(client.hvals, key)
            mine = [m for m in held if delivery_id is not None and json.loads(m)["args"] == [delivery_id]]
            sampled["most"] = max(sampled["most"], len(mine))
            sampled["samples"] += 1
            await asyncio.sleep(0.02)
    finally:
        client.close()
        await conn.close()


async def _value(result: Any) -> bool:
    return bool(await result) if asyncio.iscoroutine(result) else bool(result)


async def test_delivery_latency_from_done_to_the_receivers_200(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    from datetime import datetime

    receiver = Receiver()
    latencies = []
    with receiving(receiver):
        await registered(conn, tenant, receiver.url)
        for run in range(5):
            status = await run_import(conn, write_csv(tmp_path / f"{run}.csv", people(tenant, 5)), tenant)
            expected = run + 1
            await until(lambda: len(receiver.delivered()) == expected, "the delivery")  # noqa: B023
            finished = datetime.fromisoformat(status["finished_at"]).timestamp()
            latencies.append(receiver.delivered()[-1].at - finished)
    print(
        f"webhook latency, done -> receiver's 200: median {statistics.median(latencies) * 1000:.0f} ms,"
        f" max {max(latencies) * 1000:.0f} ms over {len(latencies)} imports"
    )
    assert statistics.median(latencies) < 2.0


async def test_a_receiver_down_for_good_ends_dead_and_visible_then_redeliver_works(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    port = free_port()  # nothing listens there
    await registered(conn, tenant, f"http://127.0.0.1:{port}/hooks")

    status = await run_import(conn, write_csv(tmp_path / "a.csv", people(tenant, 3)), tenant)
    assert status["state"] == "done"

    async def dead() -> bool:
        return [r["state"] for r in await delivery_states(conn, tenant)] == ["dead"]

    await until(dead, "the delivery to be dead-lettered", timeout=60)
    (shown,) = await list_deliveries(conn, tenant)
    assert shown["state"] == "dead" and shown["attempts"] == get_settings().webhook_max_attempts
    assert "ConnectError" in shown["last_error"]

    receiver = Receiver()
    with receiving(receiver, port):
        assert "attempted again" in await redeliver(conn, shown["id"], tenant)
        await until(lambda: len(receiver.delivered()) == 1, "the redelivery")
    assert receiver.delivered()[0].event["type"] == "import.completed"
    (row,) = await delivery_states(conn, tenant)
    assert (row["state"], row["attempts"]) == ("delivered", 1)


async def test_blocked_then_approved_sends_both_events_without_polling(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await run_import(conn, write_csv(tmp_path / "all.csv", people(tenant, 4)), tenant)
    receiver = Receiver()
    with receiving(receiver):
        await registered(conn, tenant, receiver.url)
        import_id = await submit(write_csv(tmp_path / "one.csv", people(tenant, 1)), tenant, "sync")
        await until(lambda: len(receiver.delivered()) == 1, "import.blocked")
        blocked = receiver.delivered()[0].event
        assert blocked["type"] == "import.blocked"
        assert blocked["data"]["sweep"] == {"would_deactivate": 3, "active": 4, "share": 0.75}

        await resume_import(get_settings(), import_id, allow_mass_deactivation=True)
        await until(lambda: len(receiver.delivered()) == 2, "import.completed")
    completed = receiver.delivered()[1].event
    assert completed["type"] == "import.completed" and completed["data"]["import"]["deactivated"] == 3
    assert (await wait_final(conn, import_id))["state"] == "done"


async def test_hanging_receivers_hold_no_worker_thread_so_another_tenants_import_runs_as_fast(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    baseline = await run_import(
        conn, write_csv(tmp_path / "base.csv", people(tenant + "-base", 60)), tenant + "-base"
    )
    # Twelve endpoints that never answer in time: more than the test worker's 4
    # threads, and than its WEBHOOK_CONCURRENCY (4), retried for seconds.
    receiver = Receiver(then="hang", hang_s=1.5)
    with receiving(receiver):
        await registered(conn, tenant, receiver.url)
        for n in range(11):
            await endpoints.add_endpoint(conn, tenant, f"{receiver.url}/{n}", None, allow_loopback=True)
        await run_import(conn, write_csv(tmp_path / "a.csv", people(tenant, 1)), tenant)
        await until(lambda: len(receiver.received) >= 4, "the hanging attempts")

        other = await run_import(
            conn, write_csv(tmp_path / "b.csv", people(tenant + "-b", 60)), tenant + "-b"
        )

        assert duration(other) < duration(baseline) + 1.0, (duration(other), duration(baseline))
        # Every endpoint got its attempt, four at a time, the others waiting as messages.
        await until(lambda: len({r.path for r in receiver.received}) == 12, "an attempt to each endpoint")


async def test_an_event_whose_message_was_never_sent_is_delivered_by_housekeeping(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    receiver = Receiver()
    with receiving(receiver):
        await registered(conn, tenant, receiver.url)
        # Applied in this process, as a worker would, but sending no message at
        # all: as if Redis lost it, or the worker died right after the commit.
        await apply_import(conn, write_csv(tmp_path / "a.csv", people(tenant, 2)), tenant)
        await until(lambda: len(receiver.delivered()) == 1, "housekeeping's re-send")
    assert receiver.delivered()[0].event["type"] == "import.completed"
    (row,) = await delivery_states(conn, tenant)
    assert (row["state"], row["attempts"]) == ("delivered", 1)


async def test_a_service_registers_submits_with_an_external_id_hears_back_and_an_offline_one_catches_up(
    conn: Any, tenant: str
) -> None:
    """The issue's "done when", over HTTP: register, submit with external_id, one signed
    import.completed without polling; then, as a service that was down, the feed."""
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1)", tenant)
    auth = {"Authorization": f"Bearer {(await create_token(conn, tenant, 'hr')).secret}"}
    body = "\n".join(
        ["First name,Last name,Email", *[f"P{i},Staff,p{i}.{tenant}@example.com" for i in range(3)]]
    ).encode()
    app = create_app(Settings.from_env())
    receiver = Receiver()
    async with (
        LifespanManager(app) as manager,
        AsyncClient(transport=ASGITransport(app=manager.app), base_url="http://api") as api,
    ):
        with receiving(receiver):
            added = (await api.post("/api/webhooks", json={"url": receiver.url}, headers=auth)).json()
            receiver.secrets = [added["secret"]]
            submitted = await api.post(
                "/api/imports",
                params={"mode": "upsert", "external_id": "hr-2026-12"},
                content=body,
                headers=auth,
            )
            assert submitted.status_code == 202, submitted.text
            await until(lambda: len(receiver.delivered()) == 1, "import.completed")
        (delivered,) = receiver.delivered()
        assert receiver.bad_signatures == 0 and delivered.event["type"] == "import.completed"
        assert delivered.event["data"]["external_id"] == "hr-2026-12"
        assert delivered.event["data"]["import"]["id"] == submitted.json()["id"]

        # Offline: the receiver is gone; the next import's event waits in the feed.
        again = await api.post("/api/imports", params={"mode": "upsert"}, content=body, headers=auth)
        await wait_final(conn, again.json()["id"])
        feed = (await api.get("/api/events", params={"after": 0}, headers=auth)).json()
    assert [e["data"]["import"]["id"] for e in feed["events"]] == [submitted.json()["id"], again.json()["id"]]
    assert feed["events"][0] == delivered.event  # the feed holds exactly the bodies sent
    assert feed["more"] is False
