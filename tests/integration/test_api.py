"""The HTTP API (producer.web.api) against real PostgreSQL and Redis.

Most tests drive the app in process through httpx's ASGI transport (with its
lifespan run, so the pool is the app's own); one starts the Procfile's ``web:``
line as a real server and talks to it over TCP.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import io
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.columns import TEMPLATE_HEADERS
from core.settings import Settings
from producer.control import update_tenant
from producer.reports import FINAL_STATES
from producer.web.app import create_app
from producer.web.tokens import create_token
from tests.support.imports import apply_import, person
from tests.support.services import subprocess_env

BULK_IMPORT = str(Path(sys.executable).parent / "bulk-import")
PATHS = {
    "/api/openapi.json",
    "/api/template.csv",
    "/api/imports/review",
    "/api/imports",
    "/api/imports/{import_id}",
    "/api/imports/{import_id}/errors.csv",
    "/api/imports/{import_id}/cancel",
    "/api/imports/{import_id}/undo",
    "/api/webhooks",
    "/api/webhooks/{endpoint_id}",
    "/api/webhooks/{endpoint_id}/rotate",
    "/api/webhooks/deliveries",
    "/api/webhooks/deliveries/{delivery_id}/redeliver",
    "/api/events",
    "/api/sources",
    "/api/sources/{source_id}",
    "/api/sources/{source_id}/test",
    "/api/sources/{source_id}/run",
    "/api/sources/{source_id}/pause",
    "/api/sources/{source_id}/resume",
    "/api/sources/runs/{run_id}",
    "/api/sources/runs/{run_id}/approve",
}
TEAM = [
    person("Mia", "Manager", "mia@example.com", "Sales", "Manager"),
    person("Leo", "Learner", "leo@example.com", "Sales"),
    person("Ann", "Other", "ann@example.com", "Sales"),
    person("Kim", "Free", "kim@example.com"),
]


def csv_body(rows: list[list[str]], header: tuple[str, ...] | list[str] = TEMPLATE_HEADERS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings.from_env()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://api") as http,
    ):
        yield http


@pytest.fixture
async def token(conn: Any, tenant: str) -> str:
    """A service token of the test's tenant."""
    return (await create_token(conn, tenant, "test")).secret


async def poll_final(client: httpx.AsyncClient, token: str, import_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = await client.get(f"/api/imports/{import_id}", headers=bearer(token))
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()
        if status["state"] in FINAL_STATES:
            return status
        assert time.monotonic() < deadline, f"import {import_id} still {status['state']}"
        await asyncio.sleep(0.05)


async def submit(
    client: httpx.AsyncClient, token: str, body: bytes, *, expect: int = 202, **params: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/imports", params={"mode": "upsert", **params}, content=body, headers=bearer(token)
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def imports_of(conn: Any, tenant: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM imports WHERE tenant_id = $1", tenant))


# --- description and authentication ------------------------------------------------


async def test_openapi_is_public_json_listing_every_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == PATHS
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer bi_" + "x" * 43},
        {"Authorization": "Bearer not-even-shaped-like-a-token"},
    ],
)
async def test_every_route_wants_a_valid_token(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/api/template.csv"),
        ("GET", "/api/imports"),
        ("POST", "/api/imports?mode=upsert"),
        ("POST", "/api/imports/review"),
        ("GET", "/api/imports/1"),
        ("GET", "/api/imports/1/errors.csv"),
        ("POST", "/api/imports/1/cancel"),
        ("POST", "/api/imports/1/undo"),
    ]:
        response = await client.request(method, path, headers=headers, content=csv_body(TEAM))
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_revoked_token_stops_working(client: httpx.AsyncClient, conn: Any, tenant: str) -> None:
    from producer.web.tokens import revoke_token

    new = await create_token(conn, tenant)
    assert (await client.get("/api/imports", headers=bearer(new.secret))).status_code == 200

    assert "revoked" in await revoke_token(conn, new.id)

    response = await client.get("/api/imports", headers=bearer(new.secret))
    assert (response.status_code, response.json()) == (401, {"error": "invalid or revoked token"})


async def test_template(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/api/template.csv", headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert next(csv.reader(io.StringIO(response.text))) == list(TEMPLATE_HEADERS)


# --- submit, poll, errors, list -------------------------------------------------------


@pytest.mark.usefixtures("worker")
async def test_a_service_submits_polls_lists_and_fetches_errors(
    client: httpx.AsyncClient, token: str
) -> None:
    body = csv_body([*TEAM, person("Bad", "Row", "not-an-email")])

    submitted = await submit(client, token, body)

    assert submitted["status_url"] == f"/api/imports/{submitted['id']}"
    status = await poll_final(client, token, submitted["id"])
    assert status["state"] == "done"
    assert (status["rows"]["total"], status["rows"]["invalid"], status["rows"]["created"]) == (5, 1, 4)

    errors = await client.get(f"/api/imports/{submitted['id']}/errors.csv", headers=bearer(token))
    assert errors.status_code == 200
    assert errors.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(errors.text)))
    assert rows[0] == ["Row", *TEMPLATE_HEADERS, "Reason"]
    assert len(rows) == 2
    assert (rows[1][0], rows[1][3]) == ("6", "not-an-email")
    assert "e-mail" in rows[1][-1]

    listed = (await client.get("/api/imports", headers=bearer(token))).json()
    assert [i["id"] for i in listed["imports"]] == [submitted["id"]]
    assert listed["imports"][0]["state"] == "done"
    assert listed["next"] is None


@pytest.mark.usefixtures("worker")
async def test_listing_pages_with_limit_and_before(client: httpx.AsyncClient, token: str) -> None:
    ids = [(await submit(client, token, csv_body(TEAM)))["id"] for _ in range(3)]

    first = (await client.get("/api/imports", params={"limit": 2}, headers=bearer(token))).json()
    assert [i["id"] for i in first["imports"]] == ids[:0:-1]
    second = (await client.get(first["next"], headers=bearer(token))).json()
    assert [i["id"] for i in second["imports"]] == ids[:1]

    bad = await client.get("/api/imports", params={"limit": 0}, headers=bearer(token))
    assert bad.status_code == 400 and "limit" in bad.json()["error"]


@pytest.mark.usefixtures("worker")
async def test_submit_refuses_bad_requests_with_a_reason(client: httpx.AsyncClient, token: str) -> None:
    body = csv_body(TEAM)
    cases = [
        ({}, 400, "mode"),
        ({"mode": "merge"}, 400, "upsert, sync, add-only"),
        ({"mode": "upsert", "invites": "at"}, 400, "send_at"),
        ({"mode": "upsert", "invites": "at", "send_at": "next week"}, 400, "ISO 8601"),
        ({"mode": "upsert", "allow_mass_deactivation": "maybe"}, 400, "true or false"),
        (
            {"mode": "upsert", "blank_cells": "never"},
            400,
            "blank_cells is 'never': choose one of clear, keep",
        ),
    ]
    for params, code, words in cases:
        response = await client.post("/api/imports", params=params, content=body, headers=bearer(token))
        assert response.status_code == code, (params, response.text)
        assert words in response.json()["error"], response.json()

    no_email = csv_body([["Ann", "Other"]], header=["First name", "Last name"])
    response = await client.post("/api/imports?mode=upsert", content=no_email, headers=bearer(token))
    assert response.status_code == 422
    assert "'Email'" in response.json()["error"]


@pytest.mark.usefixtures("worker")
async def test_a_naive_send_at_is_read_in_the_tenant_timezone(
    client: httpx.AsyncClient, token: str, tenant: str, settings: Settings
) -> None:
    await update_tenant(settings, tenant, None, "Europe/Paris", None)

    submitted = await submit(client, token, csv_body(TEAM), invites="at", send_at="2031-01-15T09:00:00")

    status = (await client.get(submitted["status_url"], headers=bearer(token))).json()
    assert status["send_at"] == "2031-01-15T08:00:00+00:00"
    await client.post(f"{submitted['status_url']}/cancel", headers=bearer(token))


# --- tenants and operators -----------------------------------------------------


@pytest.mark.usefixtures("worker")
async def test_a_service_token_sees_only_its_own_tenant(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    other = f"{tenant}-b"
    other_token = (await create_token(conn, other)).secret
    theirs = (await submit(client, other_token, csv_body(TEAM)))["id"]
    mine = (await submit(client, token, csv_body(TEAM)))["id"]
    await poll_final(client, other_token, theirs)

    for method, path in [
        ("GET", f"/api/imports/{theirs}"),
        ("GET", f"/api/imports/{theirs}/errors.csv"),
        ("POST", f"/api/imports/{theirs}/cancel"),
    ]:
        response = await client.request(method, path, headers=bearer(token))
        assert (response.status_code, response.json()) == (404, {"error": f"no import {theirs}"})
    missing = await client.get("/api/imports/999999999", headers=bearer(token))
    assert (missing.status_code, missing.json()) == (404, {"error": "no import 999999999"})

    listed = (await client.get("/api/imports", headers=bearer(token))).json()
    assert [i["id"] for i in listed["imports"]] == [mine]

    # Naming the other tenant is refused, whatever the route.
    crafted = [
        client.get("/api/imports", params={"tenant": other}, headers=bearer(token)),
        client.post(
            "/api/imports",
            params={"mode": "upsert", "tenant": other},
            content=csv_body(TEAM),
            headers=bearer(token),
        ),
        client.post("/api/imports/review", params={"tenant": other}, content=b"x", headers=bearer(token)),
    ]
    for response in await asyncio.gather(*crafted):
        assert response.status_code == 403, response.text
        assert "leave out ?tenant=" in response.json()["error"]
    assert await imports_of(conn, other) == 1
    assert (await client.get(f"/api/imports/{theirs}", headers=bearer(other_token))).json()["state"] == "done"


@pytest.mark.usefixtures("worker")
async def test_an_operator_sees_every_tenant_and_names_one_to_act(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    operator = (await create_token(conn, None, "ops")).secret
    other = f"{tenant}-b"
    mine = (await submit(client, token, csv_body(TEAM)))["id"]

    missing_tenant = await client.post(
        "/api/imports?mode=upsert", content=csv_body(TEAM), headers=bearer(operator)
    )
    assert missing_tenant.status_code == 400 and "?tenant=" in missing_tenant.json()["error"]
    theirs = (await submit(client, operator, csv_body(TEAM), tenant=other))["id"]

    assert (await poll_final(client, operator, mine))["tenant"] == tenant
    assert (await poll_final(client, operator, theirs))["tenant"] == other
    everyone = (await client.get("/api/imports", params={"limit": 1000}, headers=bearer(operator))).json()
    assert {mine, theirs} <= {i["id"] for i in everyone["imports"]}
    only_b = (await client.get("/api/imports", params={"tenant": other}, headers=bearer(operator))).json()
    assert [i["id"] for i in only_b["imports"]] == [theirs]
    assert (
        await client.get(f"/api/imports/{theirs}/errors.csv", headers=bearer(operator))
    ).status_code == 200


# --- idempotency, size limit, review, cancel -------------------------------------------


@pytest.mark.usefixtures("worker")
async def test_the_same_idempotency_key_returns_the_same_import(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    key = {"Idempotency-Key": "payroll-sync-2031-01-15"}
    first = await client.post(
        "/api/imports?mode=upsert", content=csv_body(TEAM), headers={**bearer(token), **key}
    )
    again = await client.post(
        "/api/imports?mode=upsert", content=csv_body(TEAM), headers={**bearer(token), **key}
    )

    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert await imports_of(conn, tenant) == 1

    other_token = (await create_token(conn, f"{tenant}-b")).secret
    elsewhere = await client.post(
        "/api/imports?mode=upsert", content=csv_body(TEAM), headers={**bearer(other_token), **key}
    )
    assert elsewhere.status_code == 202 and elsewhere.json()["id"] != first.json()["id"]


async def test_a_body_over_the_limit_is_refused_with_413(
    settings: Settings, conn: Any, token: str, tenant: str
) -> None:
    app = create_app(dataclasses.replace(settings, api_max_upload_bytes=1_000))
    body = csv_body([person("A", "B", f"p{i}@example.com") for i in range(100)])
    assert len(body) > 1_000

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://api") as http,
    ):
        for path in ("/api/imports?mode=upsert", "/api/imports/review"):
            declared = await http.post(path, content=body, headers=bearer(token))
            streamed = await http.post(path, content=chunked(), headers=bearer(token))
            for response in (declared, streamed):
                assert response.status_code == 413, response.text
                assert "API_MAX_UPLOAD_BYTES" in response.json()["error"]
        assert "content-length" not in streamed.request.headers
        small = await http.post("/api/imports/review", content=csv_body(TEAM[:1]), headers=bearer(token))
        assert small.status_code == 200
    assert await imports_of(conn, tenant) == 0


@pytest.mark.usefixtures("worker")
async def test_review_reports_without_importing(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    await poll_final(client, token, (await submit(client, token, csv_body(TEAM)))["id"])
    body = csv_body([TEAM[0], person("Bad", "Row", "not-an-email")])

    response = await client.post(
        "/api/imports/review", params={"mode": "sync"}, content=body, headers=bearer(token)
    )

    assert response.status_code == 200
    review = response.json()
    assert (review["tenant"], review["mode"], review["importable"]) == (tenant, "sync", True)
    assert review["file"]["name"] is None
    assert review["columns"]["missing_required"] == []
    assert (review["rows"]["total"], review["rows"]["invalid"]) == (2, 1)
    assert review["errors"][0]["row"] == 3
    assert (review["preview"]["unchanged"], review["preview"]["deactivate"]) == (1, 3)
    assert await imports_of(conn, tenant) == 1

    empty = await client.post("/api/imports/review", content=b"", headers=bearer(token))
    assert empty.status_code == 422 and "empty" in empty.json()["error"]
    bad_mode = await client.post("/api/imports/review?mode=merge", content=body, headers=bearer(token))
    assert bad_mode.status_code == 400
    bad_blank_cells = await client.post(
        "/api/imports/review?blank_cells=never", content=body, headers=bearer(token)
    )
    assert bad_blank_cells.status_code == 400 and "clear, keep" in bad_blank_cells.json()["error"]


async def test_review_pages_through_the_changes_of_the_people_to_update(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    await apply_import(conn, io.BytesIO(csv_body(TEAM)), tenant)
    # Leo and Ann move to Support (no manager there): two people to update.
    moved = [TEAM[0], *([*row[:4], "Support", *row[5:]] for row in TEAM[1:3])]

    response = await client.post(
        "/api/imports/review",
        params={"changes_offset": 1, "changes_limit": 1},
        content=csv_body(moved),
        headers=bearer(token),
    )

    assert response.status_code == 200
    assert response.json()["changes"] == {
        "total": 2,
        "offset": 1,
        "limit": 1,
        "rows": [
            {
                "row": 4,
                "email": "ann@example.com",
                "name": "Ann Other",
                "changes": [
                    {"field": "primary_team", "header": "Primary team", "old": "Sales", "new": "Support"},
                    {"field": "manager", "header": "Manager", "old": "mia@example.com", "new": None},
                ],
            }
        ],
    }
    too_many = await client.post(
        "/api/imports/review?changes_limit=100001", content=csv_body(moved), headers=bearer(token)
    )
    assert too_many.status_code == 400 and "changes_limit" in too_many.json()["error"]


@pytest.mark.usefixtures("worker")
async def test_mapping_is_reviewed_submitted_remembered_and_shown_in_the_status(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    header = ["Email", "First name", "Last name", "Titre", "Notes"]
    body = csv_body([["ann@example.com", "Ann", "Lee", "Lead", "x"]], header=header)
    mapping = json.dumps({"Titre": "job_title", "notes": None})

    reviewed = await client.post(
        "/api/imports/review", params={"mapping": mapping}, content=body, headers=bearer(token)
    )
    submitted = await submit(client, token, body, mapping=mapping)

    assert reviewed.status_code == 200, reviewed.text
    columns = reviewed.json()["columns"]
    assert (columns["chosen"], columns["ignored"], columns["remembered"]) == (
        {"Titre": "job_title", "Notes": None},
        ["Notes"],
        [],
    )
    status = await poll_final(client, token, submitted["id"])
    assert status["state"] == "done"
    assert status["mapping"] == {"Titre": "job_title", "Notes": None}
    title = await conn.fetchval("SELECT job_title FROM people WHERE tenant_id = $1", tenant)
    assert title == "Lead"
    again = await client.post("/api/imports/review", content=body, headers=bearer(token))
    assert again.json()["columns"]["remembered"] == ["Titre", "Notes"]


async def test_a_malformed_mapping_is_refused_with_the_expected_form(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    body = csv_body(TEAM)
    cases = [
        ("{Titre: job_title}", "not valid JSON"),
        ('["Titre"]', "must be a JSON object"),
        ('{"Titre": 3}', "'Titre' must be a field name (a string) or null"),
        ('{"Email": "e_mail"}', "'e_mail' is not a field: choose one of first_name"),
        ('{"Titre": "job_title"}', "no column 'Titre'"),
    ]
    for mapping, words in cases:
        for path in ("/api/imports/review", "/api/imports"):
            response = await client.post(
                path, params={"mode": "upsert", "mapping": mapping}, content=body, headers=bearer(token)
            )
            assert response.status_code == 400, (path, mapping, response.text)
            assert words in response.json()["error"], (path, response.json())
    assert await imports_of(conn, tenant) == 0


@pytest.mark.usefixtures("worker")
async def test_blank_cells_keep_is_reviewed_submitted_and_shown_in_the_status(
    client: httpx.AsyncClient, conn: Any, token: str, tenant: str
) -> None:
    await poll_final(client, token, (await submit(client, token, csv_body(TEAM)))["id"])
    # Mia's team and role cells blank: kept under keep, so nothing changes.
    body = csv_body([person("Mia", "Manager", "mia@example.com")])

    reviewed = await client.post(
        "/api/imports/review", params={"blank_cells": "keep"}, content=body, headers=bearer(token)
    )
    assert reviewed.status_code == 200
    assert (reviewed.json()["blank_cells"], reviewed.json()["preview"]["unchanged"]) == ("keep", 1)
    status = await poll_final(client, token, (await submit(client, token, body, blank_cells="keep"))["id"])

    assert (status["blank_cells"], status["rows"]["unchanged"]) == ("keep", 1)
    kept = await conn.fetchrow(
        "SELECT p.role, t.name FROM people p JOIN teams t ON t.id = p.primary_team_id"
        " WHERE p.tenant_id = $1 AND p.email = 'mia@example.com'",
        tenant,
    )
    assert tuple(kept) == ("manager", "Sales")


@pytest.mark.usefixtures("worker")
async def test_cancel(client: httpx.AsyncClient, token: str) -> None:
    done = (await submit(client, token, csv_body(TEAM)))["id"]
    await poll_final(client, token, done)
    # A sync that would deactivate 3 of 4 people waits for approval: it can be cancelled.
    blocked = (await submit(client, token, csv_body(TEAM[:1]), mode="sync"))["id"]
    assert (await poll_final(client, token, blocked))["state"] == "blocked"

    response = await client.post(f"/api/imports/{blocked}/cancel", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["message"].startswith(f"import {blocked} cancelled")
    assert (await poll_final(client, token, blocked))["state"] == "cancelled"

    # An import that has ended: its unsent (pending) invites are cancelled, once; then nothing is left.
    ended = await client.post(f"/api/imports/{done}/cancel", headers=bearer(token))
    assert ended.status_code == 200 and "4 unsent invites are cancelled" in ended.json()["message"]
    again = await client.post(f"/api/imports/{done}/cancel", headers=bearer(token))
    assert again.status_code == 409
    assert "nothing to cancel" in again.json()["error"]


async def test_a_redis_outage_during_submit_answers_503(
    client: httpx.AsyncClient, token: str, conn: Any, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    from core.queues import current_broker
    from tests.support.services import free_port

    broker = current_broker()
    # Nothing listens on this port: every enqueue fails to connect, as with Redis down.
    monkeypatch.setattr(broker, "client", redis.Redis(host="127.0.0.1", port=free_port()))

    response = await client.post("/api/imports?mode=upsert", content=csv_body(TEAM), headers=bearer(token))

    assert response.status_code == 503, response.text
    message = response.json()["error"]
    import_id = await conn.fetchval("SELECT id FROM imports WHERE tenant_id = $1", tenant)
    assert f"import {import_id} is recorded but its rows could not be queued" in message
    assert f"bulk-import resume {import_id}" in message


# --- tokens from the command line -------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BULK_IMPORT, *args], capture_output=True, text=True, env=subprocess_env(), timeout=60, check=False
    )


async def test_token_create_prints_the_token_last_and_stores_only_its_hash(
    client: httpx.AsyncClient, conn: Any, tenant: str
) -> None:
    made = run_cli("token", "create", "--tenant", tenant, "--label", "payroll")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("bi_") and "revoke" in made.stderr

    assert (await client.get("/api/imports", headers=bearer(secret))).status_code == 200
    rows = await conn.fetch(
        "SELECT *, api_tokens::text AS everything FROM api_tokens WHERE tenant_id = $1", tenant
    )
    assert len(rows) == 1
    assert bytes(rows[0]["token_hash"]) == hashlib.sha256(secret.encode()).digest()
    assert secret not in rows[0]["everything"]
    assert secret.encode() not in bytes(rows[0]["token_hash"])

    revoked = run_cli("token", "revoke", str(rows[0]["id"]))
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert (await client.get("/api/imports", headers=bearer(secret))).status_code == 401

    operator = run_cli("token", "create", "--operator")
    assert operator.returncode == 0, operator.stderr
    assert "operators" in operator.stderr
    neither = run_cli("token", "create")
    assert neither.returncode == 1 and "--operator" in neither.stderr
    bad = run_cli("token", "create", "--tenant", "not a tenant!")
    assert bad.returncode == 1 and "is not a tenant id" in bad.stderr


# --- the Procfile's web line ---------------------------------------------------------


@pytest.mark.usefixtures("worker")
async def test_the_procfile_web_line_serves_the_api(
    web_server: str, token: str, tenant: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=web_server, headers=bearer(token), timeout=30) as http:
        assert (await http.get("/api/imports")).json() == {"imports": [], "next": None}
        submitted = await http.post("/api/imports?mode=upsert", content=csv_body(TEAM))
        assert submitted.status_code == 202, submitted.text
        status = (await http.get(submitted.json()["status_url"])).json()
        assert (status["tenant"], status["rows"]["total"]) == (tenant, 4)
        assert (await http.get("/api/imports/1", headers={"Authorization": "Bearer nope"})).status_code == 401

    # uvicorn's own lines (startup, access log) come through structlog, as JSON like every other line.
    lines = [json.loads(line) for line in (tmp_path / "web.log").read_text().splitlines() if line]
    by_logger = {line.get("logger") for line in lines}
    assert {"uvicorn.error", "uvicorn.access"} <= by_logger
    assert any(
        "GET /api/imports HTTP/1.1" in line["event"]
        for line in lines
        if line.get("logger") == "uvicorn.access"
    )
    assert all("timestamp" in line and "level" in line for line in lines)
