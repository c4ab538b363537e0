"""The operators' dashboard and /metrics over HTTP (in process, real PostgreSQL and Redis):
who may see them, the login cookie, CSRF, and the figures. The browser tests
(test_dashboard_browser.py) click through the pages."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from test_api import TEAM, bearer, csv_body, poll_final, submit

from core.settings import Settings
from producer.web.app import create_app
from producer.web.operators import COOKIE, csrf_token
from producer.web.tokens import create_token
from tests.support.imports import person


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings.from_env()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://dash") as http,
    ):
        yield http


@pytest.fixture
async def operator(conn: Any) -> str:
    return (await create_token(conn, None, "ops")).secret


@pytest.fixture
async def token(conn: Any, tenant: str) -> str:
    return (await create_token(conn, tenant, "service")).secret


HTML = {"Accept": "text/html"}


async def test_only_an_operator_gets_in(client: httpx.AsyncClient, operator: str, token: str) -> None:
    anonymous = await client.get("/", headers=HTML)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/login?next=%2F")
    assert (await client.get("/dashboard.json")).status_code == 401
    assert "Operator token" in (await client.get("/login")).text

    # A service token is refused, as a header and at the login form (no cookie set).
    as_service = await client.get("/dashboard.json", headers=bearer(token))
    assert as_service.status_code == 403 and "for operators" in as_service.json()["error"]
    login = await client.post("/login", data={"token": token, "next": "/"})
    assert login.status_code == 403 and "for operators" in login.text
    assert COOKIE not in login.cookies
    bad = await client.post("/login", data={"token": "bi_" + "x" * 43})
    assert bad.status_code == 401 and "invalid or revoked" in bad.text

    login = await client.post("/login", data={"token": operator, "next": "/"})
    assert (login.status_code, login.headers["location"]) == (303, "/")
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    page = await client.get("/", headers=HTML)  # the client keeps the cookie, as a browser does
    assert page.status_code == 200
    assert "Queues" in page.text and csrf_token(operator) in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    overview = (await client.get("/dashboard.json")).json()
    assert [q["name"] for q in overview["queues"]] == [
        "rows",
        "imports",
        "invite_schedules",
        "invites",
        "webhooks",
        "sources",
    ]
    # An operator's bearer header works without the cookie.
    client.cookies.clear()
    assert (await client.get("/dashboard.json", headers=bearer(operator))).status_code == 200

    off_site = await client.post("/login", data={"token": operator}, headers={"Origin": "https://evil.test"})
    assert off_site.status_code == 403


@pytest.mark.usefixtures("worker")
async def test_a_cookie_post_needs_the_csrf_token(
    client: httpx.AsyncClient, operator: str, token: str, conn: Any
) -> None:
    done = (await submit(client, token, csv_body(TEAM)))["id"]
    await poll_final(client, token, done)
    blocked = (await submit(client, token, csv_body(TEAM[:1]), mode="sync"))["id"]
    assert (await poll_final(client, token, blocked))["state"] == "blocked"
    await client.post("/login", data={"token": operator})
    url = f"/imports/{blocked}/cancel"

    for form, headers in [
        ({}, {}),
        ({"csrf": "0" * 64}, {}),
        ({"csrf": csrf_token(operator)}, {"Origin": "https://evil.test"}),
    ]:
        refused = await client.post(url, data=form, headers=headers)
        assert refused.status_code == 403, refused.text
    assert await conn.fetchval("SELECT state FROM imports WHERE id = $1", blocked) == "blocked"

    accepted = await client.post(url, data={"csrf": csrf_token(operator)}, headers={"Origin": "http://dash"})
    assert accepted.status_code == 303
    assert accepted.headers["location"].startswith(
        f"/imports/{blocked}?notice=import%20{blocked}%20cancelled"
    )
    assert await conn.fetchval("SELECT state FROM imports WHERE id = $1", blocked) == "cancelled"
    banner = await client.get(accepted.headers["location"], headers=HTML)
    assert f'<p class="flash notice" role="status">import {blocked} cancelled' in banner.text
    # A crafted link cannot put words in the dashboard's mouth: banners are signed.
    spoofed = await client.get(f"/imports/{blocked}?problem=paste+your+token+at+evil.test", headers=HTML)
    assert spoofed.status_code == 200 and "evil.test" not in spoofed.text
    # With a bearer header instead of the cookie, no CSRF token is needed (a browser never adds one).
    client.cookies.clear()
    again = await client.post(url, headers=bearer(operator))
    assert again.status_code == 303 and "problem=" in again.headers["location"]
    assert (await client.post(f"/imports/{blocked}/explode", headers=bearer(operator))).status_code == 404


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.usefixtures("worker")
async def test_metrics_count_rows_invites_and_queues(
    client: httpx.AsyncClient, operator: str, token: str, tenant: str, smtp_server: Any
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=bearer(token))).status_code == 403
    before = await client.get("/metrics", headers=bearer(operator))
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
    first = scrape(before.text)

    people = [
        person("Ann", "One", f"ann@{tenant}.example.com"),
        person("Bo", "Two", f"bo@{tenant}.example.com"),
    ]
    body = csv_body([*people, person("Bad", "Row", "not-an-email")])
    import_id = (await submit(client, token, body, invites="now"))["id"]
    await poll_final(client, token, import_id)
    await _wait_for_invites_sent(client, token, import_id, 2)

    second = scrape((await client.get("/metrics", headers=bearer(operator))).text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return second[key] - first[key]

    assert grew("bulk_import_rows_total", outcome="created") == 2
    assert grew("bulk_import_rows_total", outcome="invalid") == 1
    assert grew("bulk_import_rows_total", outcome="failed") == 0
    assert grew("bulk_import_invites_total", outcome="sent") == 2
    assert grew("bulk_import_imports", state="done") == 1
    for queue in ("rows", "imports", "invite_schedules", "invites"):
        for state in ("ready", "in_progress", "delayed", "dead"):
            assert ("bulk_import_queue_messages", (("queue", queue), ("state", state))) in second
    assert second[("bulk_import_broker_processes", ())] >= 1  # the worker's heartbeat


async def _wait_for_invites_sent(client: httpx.AsyncClient, token: str, import_id: int, count: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        status = (await client.get(f"/api/imports/{import_id}", headers=bearer(token))).json()
        if status["invites"]["sent"] >= count:
            return
        assert time.monotonic() < deadline, f"invites of import {import_id} not sent: {status['invites']}"
        await asyncio.sleep(0.1)


async def test_metrics_can_be_public(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, metrics_public=True))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://dash") as http,
    ):
        response = await http.get("/metrics")
        assert response.status_code == 200
        assert "bulk_import_queue_messages" in response.text
        # Only /metrics: the dashboard still wants an operator.
        assert (await http.get("/dashboard.json")).status_code == 401


@pytest.mark.usefixtures("worker")
async def test_an_operator_undoes_a_finished_import_from_its_page(
    client: httpx.AsyncClient, operator: str, token: str, conn: Any
) -> None:
    done = (await submit(client, token, csv_body(TEAM)))["id"]
    await poll_final(client, token, done)
    await client.post("/login", data={"token": operator})

    page = await client.get(f"/imports/{done}", headers=HTML)
    undone = await client.post(f"/imports/{done}/undo", data={"csrf": csrf_token(operator)})

    assert 'data-action="undo"' in page.text
    assert undone.status_code == 303 and "/undo" not in undone.headers["location"]
    assert "queued" in undone.headers["location"] or "started" in undone.headers["location"]
    undo_id = await conn.fetchval("SELECT id FROM imports WHERE undoes = $1", done)
    assert (await poll_final(client, token, undo_id))["undo"]["deactivated"] == len(TEAM)
