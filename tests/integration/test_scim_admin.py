"""The admin's identity provider page (/admin/scim): the base URL, a SCIM token made once and shown once."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.settings import Settings
from producer.web.app import create_app
from producer.web.operators import csrf_token
from producer.web.tokens import create_token, hash_token


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings.from_env())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://people") as http,
    ):
        yield http


async def test_an_admin_makes_a_scim_token_that_works_for_scim_only(
    client: httpx.AsyncClient, conn: Any, tenant: str
) -> None:
    admin = (await create_token(conn, tenant, "HR", admin=True)).secret
    assert (await client.post("/admin/login", data={"token": admin, "next": "/admin"})).status_code == 303
    shown = await client.get("/admin/scim")
    assert shown.status_code == 200 and "http://people/scim/v2" in shown.text
    assert 'href="/admin/scim"' in shown.text

    forged = await client.post("/admin/scim", data={"csrf": "nope", "label": "Okta"})
    assert forged.status_code in (400, 403)
    made = await client.post("/admin/scim", data={"csrf": csrf_token(admin), "label": "Okta"})
    assert made.status_code == 200
    secret = re.search(r'<code class="secret">(bi_[A-Za-z0-9_-]{43})</code>', made.text)
    assert secret is not None, html.unescape(made.text)
    row = await conn.fetchrow(
        "SELECT tenant_id, label, scim, admin FROM api_tokens WHERE token_hash = $1", hash_token(secret[1])
    )
    assert dict(row) == {"tenant_id": tenant, "label": "Okta", "scim": True, "admin": False}
    scim = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {secret[1]}"})
    assert scim.status_code == 200
    assert secret[1] not in (await client.get("/admin/scim")).text  # shown once


async def test_an_admin_sees_and_revokes_the_tenants_scim_tokens_only(
    client: httpx.AsyncClient, conn: Any, tenant: str
) -> None:
    admin = (await create_token(conn, tenant, "HR", admin=True)).secret
    okta = await create_token(conn, tenant, "Okta", scim=True)
    entra = await create_token(conn, tenant, "Entra", scim=True)
    service = await create_token(conn, tenant, "payroll")  # not SCIM: never listed
    elsewhere = await create_token(conn, f"{tenant}-other", "Okta elsewhere", scim=True)
    assert (await client.post("/admin/login", data={"token": admin, "next": "/admin"})).status_code == 303

    listed = (await client.get("/admin/scim")).text
    rows = re.findall(r'<tr data-token="(\d+)">', listed)
    assert rows == [str(entra.id), str(okta.id)]  # newest first
    assert "payroll" not in listed and "Okta elsewhere" not in listed

    revoke = f"/admin/scim/tokens/{okta.id}/revoke"
    assert (await client.post(revoke, data={"csrf": "nope"})).status_code in (400, 403)
    done = await client.post(revoke, data={"csrf": csrf_token(admin)})
    assert done.status_code == 303 and done.headers["location"] == f"/admin/scim?revoked={okta.id}"
    after = await client.get(done.headers["location"])
    assert f"SCIM token {okta.id} is revoked" in after.text
    assert re.findall(r'<tr data-token="(\d+)">', after.text) == [str(entra.id)]
    refused = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {okta.secret}"})
    assert refused.status_code == 401
    works = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {entra.secret}"})
    assert works.status_code == 200

    # Again, another tenant's, and a service token: not found, and nothing revoked.
    for token_id in (okta.id, elsewhere.id, service.id):
        missing = await client.post(f"/admin/scim/tokens/{token_id}/revoke", data={"csrf": csrf_token(admin)})
        assert missing.status_code == 404 and f"no live SCIM token {token_id}" in missing.text
    live = await conn.fetch(
        "SELECT id FROM api_tokens WHERE id = ANY($1) AND revoked_at IS NULL ORDER BY id",
        [elsewhere.id, service.id],
    )
    assert [r["id"] for r in live] == sorted([elsewhere.id, service.id])
