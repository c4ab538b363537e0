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
