"""Webhook events recorded with the state changes they report, the feed, the endpoints'
API, and the checks made before an attempt; no worker (the functions are called directly)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core import imports, invites
from core.db import connect, create_pool
from core.errors import WebhookRefused
from core.intake.reading import open_source
from core.intake.submit import record_import
from core.settings import Settings, get_settings
from core.webhooks import deliveries, endpoints
from producer.web.app import create_app
from producer.web.tokens import create_token
from producer.webhooks import events_after
from tests.support.imports import apply_import, person, request_of, write_csv


async def make_tenant(conn: Any, tenant: str) -> None:
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", tenant)


async def recorded(conn: Any, tenant: str, path: Path, **options: Any) -> int:
    """An import recorded and left queued (nothing starts it)."""
    with open_source(path) as source:
        return await record_import(conn, request_of(tenant, options.pop("mode", "upsert"), options), source)


def people(tenant: str, count: int) -> list[list[str]]:
    return [person(f"P{i}", "Staff", f"p{i}.{tenant}@example.com", "Ops") for i in range(count)]


async def events_of(conn: Any, import_id: int) -> list[Any]:
    return await conn.fetch(
        "SELECT e.type, e.payload, count(d.id) AS deliveries FROM webhook_events e "
        "LEFT JOIN webhook_deliveries d ON d.event_id = e.id "
        "WHERE e.import_id = $1 GROUP BY e.id ORDER BY e.id",
        import_id,
    )


async def test_each_ending_records_one_event_with_a_delivery_per_subscribed_endpoint(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await make_tenant(conn, tenant)
    everything = await endpoints.add_endpoint(
        conn, tenant, "http://127.0.0.1:9/all", None, allow_loopback=True
    )
    await endpoints.add_endpoint(
        conn, tenant, "http://127.0.0.1:9/failures", ["import.failed"], allow_loopback=True
    )
    csv = write_csv(tmp_path / "a.csv", people(tenant, 2))
    cancelled = await recorded(conn, tenant, csv, external_id="crm-1", idempotency_key="k-1")
    failed = await recorded(conn, tenant, csv)

    assert (await imports.cancel_import(conn, cancelled))[0] == tenant
    assert await imports.fail_import(conn, failed, "the sweep kept failing") == tenant
    assert (await imports.cancel_import(conn, cancelled))[0] is None  # already ended: no second event
    done = await apply_import(conn, csv, tenant)

    (cancel_event,) = await events_of(conn, cancelled)
    assert cancel_event["type"] == "import.cancelled" and cancel_event["deliveries"] == 1
    data = cancel_event["payload"]["data"]
    assert (data["external_id"], data["idempotency_key"]) == ("crm-1", "k-1")
    assert data["import"]["state"] == "cancelled" and data["import"]["external_id"] == "crm-1"
    assert data["links"] == {
        "status": f"/api/imports/{cancelled}",
        "errors": f"/api/imports/{cancelled}/errors.csv",
    }
    assert cancel_event["payload"]["id"].startswith("evt_")
    (fail_event,) = await events_of(conn, failed)
    assert fail_event["type"] == "import.failed" and fail_event["deliveries"] == 2
    assert fail_event["payload"]["data"]["import"]["error"] == "the sweep kept failing"
    assert done["state"] == "done"
    completed = (
        await conn.fetch("SELECT type FROM webhook_events WHERE tenant_id = $1 ORDER BY id", tenant)
    )[-1]
    assert completed["type"] == "import.completed"
    listed = await endpoints.list_endpoints(conn, tenant)
    assert [e["deliveries"]["pending"] for e in listed] == [3, 1]
    assert "secret" not in listed[0] and everything.secret.startswith("whsec_")


async def test_a_blocked_sync_reports_what_it_would_deactivate_and_the_feed_lists_events_in_order(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "all.csv", people(tenant, 4)), tenant)
    blocked = await apply_import(
        conn, write_csv(tmp_path / "one.csv", people(tenant, 1)), tenant, "sync", max_share=0.25
    )
    assert blocked["state"] == "blocked"
    import_id = await conn.fetchval("SELECT max(id) FROM imports WHERE tenant_id = $1", tenant)
    await imports.approve_mass_deactivation(conn, import_id)
    assert await imports.sweep_missing_people(conn, import_id, 0.25) == "done"

    feed = await events_after(conn, tenant, 0)
    assert [e["type"] for e in feed["events"]] == ["import.completed", "import.blocked", "import.completed"]
    assert feed["events"][1]["data"]["sweep"] == {"would_deactivate": 3, "active": 4, "share": 0.75}
    assert feed["events"][2]["data"]["import"]["deactivated"] == 3
    first = await events_after(conn, tenant, 0, limit=1)
    rest = await events_after(conn, tenant, int(first["next_cursor"]))
    assert first["more"] and [e["id"] for e in first["events"] + rest["events"]] == [
        e["id"] for e in feed["events"]
    ]
    caught_up = await events_after(conn, tenant, int(rest["next_cursor"]))
    assert caught_up["events"] == [] and caught_up["next_cursor"] == rest["next_cursor"]
    assert (await events_after(conn, "t-other", 0))["events"] == []


async def test_two_workers_settling_the_last_two_invites_at_once_record_invites_completed_once(
    database_url: str, conn: Any, tmp_path: Path, tenant: str
) -> None:
    others = [await connect(database_url) for _ in range(2)]
    try:
        for round_ in range(8):
            csv = write_csv(
                tmp_path / f"r{round_}.csv",
                [
                    person("A", "B", f"a{round_}.{tenant}@example.com"),
                    person("C", "D", f"c{round_}.{tenant}@example.com"),
                ],
            )
            await apply_import(conn, csv, tenant, invites="now")
            import_id = await conn.fetchval("SELECT max(id) FROM imports WHERE tenant_id = $1", tenant)
            ids = [
                r["id"]
                for r in await conn.fetch(
                    "UPDATE invites SET status = 'sending' WHERE import_id = $1 RETURNING id", import_id
                )
            ]
            assert len(ids) == 2
            settled = await asyncio.gather(
                invites.mark_sent(others[0], ids[0]),
                invites.fail_invite(others[1], ids[1], "550 no such user"),
            )
            assert sorted(settled, key=str) == sorted([import_id, None], key=str)
            (event,) = [e for e in await events_of(conn, import_id) if e["type"] == "invites.completed"]
            assert event["payload"]["data"]["invites"] == {"sent": 1, "failed": 1}
    finally:
        for other in others:
            await other.close()


async def test_an_attempt_checks_the_address_again_so_dns_cannot_reach_loopback(
    database_url: str, conn: Any, tmp_path: Path, tenant: str
) -> None:
    await make_tenant(conn, tenant)
    # Registered while loopback was allowed (as DNS might answer a public address then)...
    await endpoints.add_endpoint(conn, tenant, "https://localhost:9/hooks", None, allow_loopback=True)
    await apply_import(conn, write_csv(tmp_path / "a.csv", people(tenant, 1)), tenant)
    delivery_id = await conn.fetchval(
        "SELECT d.id FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id "
        "WHERE e.tenant_id = $1",
        tenant,
    )
    strict = dataclasses.replace(get_settings(), webhook_allow_loopback=False)
    pool = await create_pool(database_url, 2)
    try:
        outcome = await deliveries.deliver(pool, delivery_id, strict)
    finally:
        await pool.close()

    assert outcome.name in ("retrying", "nothing")  # "nothing": a worker's housekeeping took it first
    if outcome.name == "retrying":
        error = await conn.fetchval("SELECT last_error FROM webhook_deliveries WHERE id = $1", delivery_id)
        assert "localhost resolves to 127.0.0.1, a loopback address" in error
    with pytest.raises(WebhookRefused, match=re.escape("resolves to 127.0.0.1, a loopback address")):
        await endpoints.add_endpoint(conn, tenant, "https://localhost:8443/hooks", None, allow_loopback=False)


# --- the HTTP API ------------------------------------------------------------------


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings.from_env())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://api") as http,
    ):
        yield http


async def test_a_service_registers_rotates_lists_and_removes_its_endpoints_and_reads_the_feed(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    await make_tenant(conn, tenant)
    auth = {"Authorization": f"Bearer {(await create_token(conn, tenant, 'svc')).secret}"}
    other = {"Authorization": f"Bearer {(await create_token(conn, 't-someone-else', 'svc')).secret}"}

    added = await client.post("/api/webhooks", json={"url": "http://127.0.0.1:9/h"}, headers=auth)
    assert added.status_code == 201, added.text
    endpoint = added.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["events"][0] == "import.completed"
    rotated = await client.post(f"/api/webhooks/{endpoint['id']}/rotate", headers=auth)
    assert rotated.status_code == 200 and rotated.json()["secret"] != endpoint["secret"]
    listed = (await client.get("/api/webhooks", headers=auth)).json()["webhooks"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    assert (await client.get("/api/webhooks", headers=other)).json()["webhooks"] == []
    assert (await client.delete(f"/api/webhooks/{endpoint['id']}", headers=other)).status_code == 404

    await apply_import(conn, write_csv(tmp_path / "a.csv", people(tenant, 1)), tenant, external_id="x-9")
    feed = (await client.get("/api/events", params={"after": 0}, headers=auth)).json()
    assert [e["data"]["external_id"] for e in feed["events"]] == ["x-9"]
    assert (await client.get("/api/events", params={"after": feed["next_cursor"]}, headers=auth)).json()[
        "events"
    ] == []
    assert (await client.get("/api/events", headers=other)).json()["events"] == []

    removed = await client.delete(f"/api/webhooks/{endpoint['id']}", headers=auth)
    assert removed.status_code == 200 and (await client.get("/api/webhooks", headers=auth)).json() == {
        "webhooks": []
    }
    refused = await client.post(
        "/api/webhooks", json={"url": "http://169.254.169.254/latest/meta-data/"}, headers=auth
    )
    assert refused.status_code == 400 and "link-local" in refused.json()["error"]
    unknown = await client.post(
        "/api/webhooks", json={"url": "https://example.com/h", "events": ["import.done"]}, headers=auth
    )
    assert unknown.status_code == 400 and "unknown event type 'import.done'" in unknown.json()["error"]


async def test_operators_see_a_dead_delivery_with_its_error_redeliver_it_and_scrape_its_count(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    from producer.web.operators import csrf_token

    await make_tenant(conn, tenant)
    await endpoints.add_endpoint(
        conn, tenant, "http://127.0.0.1:9/h", ["import.completed"], allow_loopback=True
    )
    await apply_import(conn, write_csv(tmp_path / "a.csv", people(tenant, 1)), tenant)
    delivery_id = await conn.fetchval(
        "UPDATE webhook_deliveries d SET state = 'dead', attempts = 6, last_status = 500, "
        "last_error = 'HTTP 500: receiver on fire' FROM webhook_events e "
        "WHERE e.id = d.event_id AND e.tenant_id = $1 RETURNING d.id",
        tenant,
    )
    operator = (await create_token(conn, None, "ops")).secret
    await client.post("/login", data={"token": operator})

    shown = await client.get("/webhooks", params={"state": "dead"}, headers={"Accept": "text/html"})
    assert shown.status_code == 200
    assert f'data-delivery="{delivery_id}"' in shown.text and "receiver on fire" in shown.text
    home = await client.get("/", headers={"Accept": "text/html"})
    assert 'href="/webhooks?state=dead"' in home.text
    scraped = (await client.get("/metrics", headers={"Authorization": f"Bearer {operator}"})).text
    assert 'bulk_import_webhook_deliveries_total{outcome="dead"}' in scraped
    refused = await client.post(f"/webhooks/deliveries/{delivery_id}/redeliver", data={})
    assert refused.status_code == 403

    redone = await client.post(
        f"/webhooks/deliveries/{delivery_id}/redeliver",
        data={"csrf": csrf_token(operator)},
        headers={"Origin": "http://api"},
    )

    assert redone.status_code == 303 and "attempted%20again" in redone.headers["location"]
    row = await conn.fetchrow("SELECT state, attempts FROM webhook_deliveries WHERE id = $1", delivery_id)
    # Due now with its retries afresh (a worker, if one runs, may be trying it already).
    assert row["state"] == "pending" and row["attempts"] < 6
