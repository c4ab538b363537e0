"""The SCIM service (/scim/v2) against real PostgreSQL, Redis and the Procfile's worker.

Requests go in process through httpx's ASGI transport (the app's lifespan
run); every write is an import the real worker applies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.settings import Settings
from producer.web.app import create_app
from producer.web.tokens import create_token
from tests.support.services import WorkerProcess

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings.from_env()


@pytest.fixture
async def client(settings: Settings, worker: WorkerProcess) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://idp") as http,
    ):
        yield http


@pytest.fixture
async def token(conn: Any, tenant: str) -> str:
    return (await create_token(conn, tenant, "okta", scim=True)).secret


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}


def new_user(email: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": email,
        "name": {"givenName": "Dana", "familyName": "Cho"},
        "active": True,
        **extra,
    }


async def create(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/scim/v2/Users", json=body, headers=auth(token))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_user_is_created_read_found_deactivated_and_deleted(
    client: httpx.AsyncClient, token: str, conn: Any, tenant: str
) -> None:
    user = await create(
        client,
        token,
        new_user(
            "Dana.Cho@Example.com",
            externalId="E-1",
            title="Engineer",
            **{ENTERPRISE: {"department": "Sales"}},
        ),
    )
    assert user["userName"] == "dana.cho@example.com"
    assert user["externalId"] == "E-1" and user[ENTERPRISE]["department"] == "Sales"
    found = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "DANA.cho@example.com"'}, headers=auth(token)
    )
    assert found.json()["totalResults"] == 1 and found.json()["Resources"][0]["id"] == user["id"]

    patched = await client.patch(
        f"/scim/v2/Users/{user['id']}",
        json={"schemas": [PATCH], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]},
        headers=auth(token),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False
    assert await conn.fetchval("SELECT status FROM people WHERE id = $1", int(user["id"])) == "deactivated"
    origin = await conn.fetch("SELECT origin, mode, state FROM imports WHERE tenant_id = $1", tenant)
    assert {(r["origin"], r["mode"], r["state"]) for r in origin} == {("scim", "upsert", "done")}

    deleted = await client.delete(f"/scim/v2/Users/{user['id']}", headers=auth(token))
    assert deleted.status_code == 204, deleted.text
    gone = await client.get(f"/scim/v2/Users/{user['id']}", headers=auth(token))
    assert gone.status_code == 404 and gone.json()["schemas"] == [ERROR]
    assert await conn.fetchval("SELECT count(*) FROM people WHERE id = $1", int(user["id"])) == 1
