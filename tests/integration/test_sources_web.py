"""Scheduled sources over HTTP (in process, real PostgreSQL, Redis and servers on loopback): the
API (``/api/sources``), the admins' "Automatic imports" pages with their host key confirmation and
CSRF, another tenant's source "not found", the history, the dashboard and /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.settings import Settings
from core.sources import runs
from core.sources.run import attempt_run
from producer.web.app import create_app
from producer.web.operators import csrf_token
from producer.web.tokens import create_token
from tests.support.imports import person, write_csv
from tests.support.sources import SftpServer

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings.from_env()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://people") as http,
    ):
        yield http


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    (tmp_path / "sftp").mkdir()
    server = SftpServer(tmp_path / "sftp")
    server.start()
    yield server
    server.close()


async def settled(settings: Settings, conn: Any, run_id: int) -> dict[str, Any]:
    """Attempt the run here, and wait for its outcome: the session's worker, when it runs, may
    have taken the message first (the claim lets one of the two attempt it)."""
    await attempt_run(settings, run_id)
    for _ in range(300):
        run = await runs.get_run(conn, run_id, None)
        if run["outcome"] is not None:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} has no outcome after 30 s")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_a_service_adds_an_sftp_source_after_confirming_its_key_runs_it_and_reads_the_run(
    client: httpx.AsyncClient, conn: Any, tenant: str, sftp: SftpServer, tmp_path: Path, settings: Settings
) -> None:
    secret = (await create_token(conn, tenant, "etl")).secret
    body = {
        "name": "Workday",
        "url": sftp.url("people.csv"),
        "password": sftp.password,
        "schedule": "0 3 * * *",
    }
    unconfirmed = await client.post("/api/sources", json=body, headers=bearer(secret))
    assert unconfirmed.status_code == 409 and unconfirmed.json()["host_key"] == sftp.fingerprint
    assert (await client.get("/api/sources", headers=bearer(secret))).json() == {"sources": []}

    made = await client.post(
        "/api/sources",
        json={**body, "host_key": sftp.fingerprint, "options": {"mode": "sync"}},
        headers=bearer(secret),
    )
    assert made.status_code == 201, made.text
    source = made.json()
    assert source["options"]["mode"] == "sync" and source["has_secret"] and sftp.password not in made.text
    tested = (await client.post(f"/api/sources/{source['id']}/test", headers=bearer(secret))).json()
    assert tested["ok"] is False and "people.csv is not on the server" in tested["error"]

    write_csv(tmp_path / "people.csv", [person("Ada", "L", "ada@example.com")])
    sftp.drop("people.csv", (tmp_path / "people.csv").read_text())
    assert (await client.post(f"/api/sources/{source['id']}/test", headers=bearer(secret))).json()[
        "ok"
    ] is True
    started = await client.post(f"/api/sources/{source['id']}/run", headers=bearer(secret))
    assert started.status_code == 202 and started.json()["state"] == "pending"
    again = await client.post(f"/api/sources/{source['id']}/run", headers=bearer(secret))
    assert again.status_code == 200 and again.json()["id"] == started.json()["id"]
    await settled(settings, conn, started.json()["id"])
    run = (await client.get(f"/api/sources/runs/{started.json()['id']}", headers=bearer(secret))).json()
    assert run["outcome"] == "imported" and run["file"] == "people.csv"
    status = (await client.get(f"/api/imports/{run['import_id']}", headers=bearer(secret))).json()
    assert status["source"] == {"id": source["id"], "name": "Workday"} and status["file"] == "people.csv"

    operator = (await create_token(conn, None, "ops")).secret
    dashboard = await client.get("/", headers={**bearer(operator), **HTML})
    assert f'data-source="{source["id"]}"' in dashboard.text and "imported" in dashboard.text
    scraped = (await client.get("/metrics", headers=bearer(operator))).text
    assert 'bulk_import_source_runs_total{outcome="imported"}' in scraped
    paused = (await client.post(f"/api/sources/{source['id']}/pause", headers=bearer(secret))).json()
    assert paused["paused"] and paused["next_run_at"] is None
    assert (
        await client.post(f"/api/sources/runs/{run['id']}/approve", headers=bearer(secret))
    ).status_code == 409

    # Another tenant's service sees nothing of it.
    other = (await create_token(conn, tenant + "-b", "etl")).secret
    for method, path in [("GET", ""), ("POST", "/run"), ("POST", "/test"), ("DELETE", "")]:
        answer = await client.request(method, f"/api/sources/{source['id']}{path}", headers=bearer(other))
        assert answer.status_code == 404, (method, path)
    assert (await client.get(f"/api/sources/runs/{run['id']}", headers=bearer(other))).status_code == 404
    assert (await client.delete(f"/api/sources/{source['id']}", headers=bearer(secret))).json()["removed"]
    assert (await client.get("/api/sources", headers=bearer(secret))).json() == {"sources": []}
    spec = (await client.get("/api/openapi.json")).json()
    assert "/api/sources/{source_id}/run" in spec["paths"]


async def sign_in(client: httpx.AsyncClient, conn: Any, tenant: str) -> str:
    secret = (await create_token(conn, tenant, "HR admin", admin=True)).secret
    await client.post("/admin/login", data={"token": secret, "next": "/admin"})
    return secret


async def test_an_admin_adds_a_source_in_two_steps_confirming_the_servers_key_and_another_tenant_sees_none(
    client: httpx.AsyncClient, conn: Any, tenant: str, sftp: SftpServer, settings: Settings, tmp_path: Path
) -> None:
    secret = await sign_in(client, conn, tenant)
    csrf = csrf_token(secret)
    assert "Automatic imports" in (await client.get("/admin/sources", headers=HTML)).text
    url = sftp.url("exports/people-*.csv")
    forged = await client.post("/admin/sources/check", data={"csrf": "nope", "url": url}, headers=HTML)
    assert forged.status_code == 403

    step2 = await client.post("/admin/sources/check", data={"csrf": csrf, "url": url}, headers=HTML)
    assert step2.status_code == 200 and sftp.fingerprint in step2.text
    form = {
        "csrf": csrf,
        "url": url,
        "fingerprint": sftp.fingerprint,
        "name": "Nightly",
        "password": sftp.password,
        "schedule": "0 3 * * *",
        "mode": "upsert",
        "blank_cells": "keep",
        "invites": "none",
    }
    unticked = await client.post("/admin/sources", data=form, headers=HTML)
    assert (
        unticked.status_code == 400 and "tick the box" in unticked.text and sftp.password not in unticked.text
    )
    saved = await client.post("/admin/sources", data={**form, "confirm": "yes"}, headers=HTML)
    assert saved.status_code == 303, saved.text
    page_url = saved.headers["location"].split("?")[0]
    shown = await client.get(saved.headers["location"], headers=HTML)
    assert "Nightly" in shown.text and sftp.fingerprint in shown.text and sftp.password not in shown.text

    tested = await client.post(page_url + "/test", data={"csrf": csrf}, headers=HTML)
    assert tested.status_code == 409 and "The connection does not work" in tested.text  # no file yet
    header = ["First name", "Last name", "Work contact"]
    sftp.drop(
        "exports/people-1.csv",
        write_csv(tmp_path / "b.csv", [["A", "B", "a@example.com"]], header).read_text(),
    )
    ran = await client.post(page_url + "/run", data={"csrf": csrf}, headers=HTML)
    assert ran.status_code == 303
    source_id = int(page_url.rsplit("/", 1)[1])
    (run,) = await runs.runs_of_source(conn, tenant, source_id)
    await settled(settings, conn, run["id"])
    shown = await client.get(page_url, headers=HTML)
    assert 'data-outcome="blocked"' in shown.text and "has no column for" in shown.text
    history = await client.get("/admin/imports", headers=HTML)
    assert 'id="stopped-runs"' in history.text and "Nightly" in history.text

    # Another tenant's admin: not found, whatever the URL says.
    client.cookies.clear()
    await sign_in(client, conn, tenant + "-b")
    assert (await client.get(page_url, headers=HTML)).status_code == 404
    assert "Nightly" not in (await client.get("/admin/sources", headers=HTML)).text
