"""The SCIM service's Users (/scim/v2) against real PostgreSQL, Redis and the Procfile's worker.

Requests go in process through httpx's ASGI transport (the app's lifespan
run); every write is an import the real worker applies.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from core.settings import Settings
from producer.control import undo_import
from producer.web.app import create_app
from producer.web.tokens import create_token
from tests.support.imports import wait_final
from tests.support.scim import (
    ENTERPRISE,
    ERROR,
    GROUP,
    PATCH,
    auth,
    client,
    create,
    new_user,
    patch_op,
    settings,
    token,
)
from tests.support.services import subprocess_env

__all__ = ["client", "settings", "token"]  # the fixtures


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


async def test_okta_sequence(client: httpx.AsyncClient, token: str, conn: Any) -> None:
    """Okta's documented flow: look up by userName, create, update, deactivate, reactivate."""
    lookup = await client.get(
        "/scim/v2/Users",
        params={"filter": 'userName eq "ida@example.com"', "startIndex": "1", "count": "100"},
        headers=auth(token),
    )
    assert lookup.status_code == 200 and lookup.json()["totalResults"] == 0
    user = await create(
        client,
        token,
        new_user(
            "ida@example.com",
            emails=[{"primary": True, "value": "ida@example.com", "type": "work"}],
            displayName="Ida Ng",
            locale="en-US",
            groups=[],
        ),
    )
    path = f"/scim/v2/Users/{user['id']}"
    put = await client.put(path, json=user | {"title": "Director"}, headers=auth(token))
    assert put.status_code == 200 and put.json()["title"] == "Director"
    off = await client.patch(
        path, json=patch_op({"op": "replace", "value": {"active": False}}), headers=auth(token)
    )
    assert off.json()["active"] is False
    on = await client.patch(
        path, json=patch_op({"op": "replace", "value": {"active": True}}), headers=auth(token)
    )
    assert on.json()["active"] is True and on.json()["title"] == "Director"
    assert await conn.fetchval("SELECT status FROM people WHERE id = $1", int(user["id"])) == "active"


async def test_entra_sequence_renames_the_same_person(
    client: httpx.AsyncClient, token: str, conn: Any
) -> None:
    """Entra's flow: filter by userName, create, PATCH with capitalised ops and paths, rename, deactivate."""
    user = await create(client, token, new_user("ola@example.com", externalId="E-7"))
    path = f"/scim/v2/Users/{user['id']}"
    body = patch_op(
        {"op": "Replace", "path": "title", "value": "Analyst"},
        {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Oslo"},
        {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Finance"},
        {"op": "Replace", "path": "userName", "value": "ola.berg@example.com"},
    )
    renamed = await client.patch(path, json=body, headers=auth(token))
    assert renamed.status_code == 200, renamed.text
    answer = renamed.json()
    assert answer["id"] == user["id"] and answer["userName"] == "ola.berg@example.com"
    assert answer["addresses"] == [{"locality": "Oslo"}] and answer[ENTERPRISE]["department"] == "Finance"
    old = await client.get(
        "/scim/v2/Users", params={"filter": 'userName eq "ola@example.com"'}, headers=auth(token)
    )
    assert old.json()["totalResults"] == 0
    by_id = await client.get("/scim/v2/Users", params={"filter": 'externalId eq "E-7"'}, headers=auth(token))
    assert [r["id"] for r in by_id.json()["Resources"]] == [user["id"]]
    off = await client.patch(
        path, json=patch_op({"op": "Replace", "path": "active", "value": "False"}), headers=auth(token)
    )
    assert off.json()["active"] is False
    changes = await conn.fetchval(
        "SELECT count(*) FROM import_changes c JOIN imports i ON i.id = c.import_id"
        " WHERE c.person_id = $1 AND i.origin = 'scim'",
        int(user["id"]),
    )
    assert changes == 2  # the rename and the deactivation, each recorded for undo


async def test_a_manager_is_read_from_the_primary_team(
    client: httpx.AsyncClient, token: str, conn: Any
) -> None:
    boss = await create(client, token, new_user("boss@example.com", **{ENTERPRISE: {"department": "Ops"}}))
    await conn.execute("UPDATE people SET role = 'manager' WHERE id = $1", int(boss["id"]))
    # The team's manager is decided as a file's are: a Manager whose primary team it is, on a row.
    await client.put(f"/scim/v2/Users/{boss['id']}", json=boss, headers=auth(token))
    report = await create(client, token, new_user("rep@example.com", **{ENTERPRISE: {"department": "ops"}}))
    assert report[ENTERPRISE]["department"] == "Ops"  # the team's own spelling
    assert report[ENTERPRISE]["manager"]["value"] == boss["id"]
    refused = await client.patch(
        f"/scim/v2/Users/{report['id']}",
        json=patch_op({"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": "1"}}),
        headers=auth(token),
    )
    assert refused.status_code == 400 and refused.json()["scimType"] == "mutability"


async def test_conflicts_and_retries(client: httpx.AsyncClient, token: str, conn: Any, tenant: str) -> None:
    first = await create(client, token, new_user("kim@example.com", externalId="K-1"))
    again = await client.post("/scim/v2/Users", json=new_user("KIM@example.com"), headers=auth(token))
    assert again.status_code == 409 and again.json()["scimType"] == "uniqueness"
    other = await create(client, token, new_user("lee@example.com"))
    taken = await client.patch(
        f"/scim/v2/Users/{other['id']}",
        json=patch_op({"op": "replace", "path": "userName", "value": "kim@example.com"}),
        headers=auth(token),
    )
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness", taken.text
    id_taken = await client.post(
        "/scim/v2/Users", json=new_user("max@example.com", externalId="K-1"), headers=auth(token)
    )
    assert id_taken.status_code == 409, id_taken.text
    changed_id = await client.put(
        f"/scim/v2/Users/{first['id']}", json=first | {"externalId": "K-2"}, headers=auth(token)
    )
    assert changed_id.status_code == 400 and changed_id.json()["scimType"] == "mutability"
    # An identity provider resends on timeout: the same PUT twice changes nothing the second time.
    body = first | {"title": "Chef"}
    for _ in range(2):
        assert (
            await client.put(f"/scim/v2/Users/{first['id']}", json=body, headers=auth(token))
        ).status_code == 200
    outcomes = await conn.fetch(
        "SELECT r.status FROM import_rows r JOIN imports i ON i.id = r.import_id"
        " WHERE i.tenant_id = $1 AND r.person_id = $2 ORDER BY i.id DESC LIMIT 2",
        tenant,
        int(first["id"]),
    )
    assert [r["status"] for r in outcomes] == ["unchanged", "updated"]
    assert await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1", tenant) == 2


async def test_another_tenant_sees_and_writes_nothing(
    client: httpx.AsyncClient, token: str, conn: Any
) -> None:
    mine = await create(client, token, new_user("own@example.com", externalId="O-1"))
    theirs = (await create_token(conn, "t-other-" + mine["id"], "idp", scim=True)).secret
    path = f"/scim/v2/Users/{mine['id']}"
    assert (await client.get(path, headers=auth(theirs))).status_code == 404
    assert (await client.put(path, json=mine, headers=auth(theirs))).status_code == 404
    assert (
        await client.patch(path, json=patch_op({"op": "remove", "path": "title"}), headers=auth(theirs))
    ).status_code == 404
    assert (await client.delete(path, headers=auth(theirs))).status_code == 404
    for text in (
        'userName eq "own@example.com"',
        'externalId eq "O-1"',
        f'id eq "{mine["id"]}"',
        "userName pr",
    ):
        listed = await client.get("/scim/v2/Users", params={"filter": text}, headers=auth(theirs))
        assert listed.json()["totalResults"] == 0, text
    assert (await client.get(path, headers=auth(token))).json()["userName"] == "own@example.com"
    group = await client.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP], "displayName": "Own team", "members": [{"value": mine["id"]}]},
        headers=auth(token),
    )
    assert group.status_code == 201, group.text
    group_path = f"/scim/v2/Groups/{group.json()['id']}"
    assert (await client.get(group_path, headers=auth(theirs))).status_code == 404
    assert (await client.delete(group_path, headers=auth(theirs))).status_code == 404
    their_groups = await client.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "Own team"'}, headers=auth(theirs)
    )
    assert their_groups.json()["totalResults"] == 0
    # Their own team of the same name is theirs, and cannot take our User in.
    theirs_made = await client.post(
        "/scim/v2/Groups",
        json={"schemas": [GROUP], "displayName": "Own team", "members": [{"value": mine["id"]}]},
        headers=auth(theirs),
    )
    assert theirs_made.status_code == 400 and theirs_made.json()["scimType"] == "invalidValue"
    assert not await conn.fetchval("SELECT count(*) FROM teams WHERE tenant_id = $1", "t-other-" + mine["id"])
    # Scopes do not mix: a SCIM token is no API token, and an API token no SCIM one.
    service = (await create_token(conn, "t-other-" + mine["id"], "svc")).secret
    assert (await client.get("/scim/v2/Users", headers=auth(service))).status_code == 401
    assert (await client.get("/api/imports", headers=auth(token))).status_code == 401


async def test_hostile_input_changes_nothing(
    client: httpx.AsyncClient, token: str, conn: Any, tenant: str
) -> None:
    async def refused(response: httpx.Response, status: int, scim_type: str | None = None) -> None:
        assert response.status_code == status, response.text
        assert response.json()["schemas"] == [ERROR]
        if scim_type:
            assert response.json()["scimType"] == scim_type

    users = "/scim/v2/Users"
    await refused(await client.get(users), 401)
    await refused(
        await client.get(
            users, params={"filter": "(" * 50 + 'userName eq "a"' + ")" * 50}, headers=auth(token)
        ),
        400,
        "invalidFilter",
    )
    await refused(
        await client.get(users, params={"filter": "userName eq"}, headers=auth(token)), 400, "invalidFilter"
    )
    await refused(
        await client.post(users, content=b"userName=x", headers=auth(token) | {"Content-Type": "text/plain"}),
        415,
    )
    await refused(await client.post(users, content=b"{nope", headers=auth(token)), 400, "invalidSyntax")
    await refused(await client.post(users, content=b"[" * 2_000_000, headers=auth(token)), 413)
    await refused(
        await client.post(users, json=new_user("not-an-address"), headers=auth(token)), 400, "invalidValue"
    )
    await refused(
        await client.post(
            users, json=new_user("x@example.com") | {"schemas": ["urn:evil"]}, headers=auth(token)
        ),
        400,
        "invalidValue",
    )
    await refused(await client.get(users + "/99999999999999999999", headers=auth(token)), 404)
    await refused(await client.get("/scim/v2/Widgets", headers=auth(token)), 404)
    await refused(await client.put(users, json={}, headers=auth(token)), 405)
    # Unknown attributes are ignored, as a PUT ignores what it does not keep.
    odd = await create(client, token, new_user("odd@example.com", nickName="O", favouriteColour="red"))
    assert "nickName" not in odd and "favouriteColour" not in odd
    assert await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1", tenant) == 1


async def test_discovery_advertises_what_works(client: httpx.AsyncClient) -> None:
    config = (await client.get("/scim/v2/ServiceProviderConfig")).json()
    assert config["patch"]["supported"] is True and config["filter"] == {"supported": True, "maxResults": 200}
    assert config["bulk"] == {"supported": True, "maxOperations": 1000, "maxPayloadSize": 4 * 1024 * 1024}
    assert not config["sort"]["supported"] and not config["etag"]["supported"]
    assert not config["changePassword"]["supported"]
    schema = (await client.get(f"/scim/v2/Schemas/{ENTERPRISE}")).json()
    manager = next(a for a in schema["attributes"] if a["name"] == "manager")
    assert manager["mutability"] == "readOnly"
    types = (await client.get("/scim/v2/ResourceTypes")).json()
    assert [t["id"] for t in types["Resources"]] == ["User", "Group"]


async def test_token_create_scim_makes_a_token_for_scim_only(client: httpx.AsyncClient, tenant: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "bulk-import"), "token", "create", *args],
            capture_output=True,
            text=True,
            env=subprocess_env(),
            timeout=60,
            check=False,
        )

    made = cli("--tenant", tenant, "--scim", "--label", "okta")
    assert made.returncode == 0, made.stderr
    assert "SCIM provisioning" in made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    listed = await client.get("/scim/v2/Users", headers=auth(secret))
    assert listed.status_code == 200 and listed.json()["totalResults"] == 0
    assert (await client.get("/api/imports", headers=auth(secret))).status_code == 401
    for wrong in (("--tenant", tenant, "--scim", "--admin"), ("--operator", "--scim")):
        refused = cli(*wrong)
        assert refused.returncode != 0 and "--scim" in refused.stderr and not refused.stdout


async def test_scim_writes_are_undone_as_imports_are(
    client: httpx.AsyncClient, token: str, conn: Any, settings: Settings
) -> None:
    user = await create(client, token, new_user("una@example.com", title="Clerk"))
    path = f"/scim/v2/Users/{user['id']}"
    body = patch_op(
        {"op": "replace", "path": "userName", "value": "una.new@example.com"},
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": "active", "value": False},
    )
    assert (await client.patch(path, json=body, headers=auth(token))).status_code == 200
    last = await conn.fetchval(
        "SELECT max(id) FROM imports WHERE origin = 'scim' AND filename LIKE 'SCIM PATCH%'"
    )
    undo_id, _, _ = await undo_import(settings, last)
    assert (await wait_final(conn, undo_id))["state"] == "done"
    back = (await client.get(path, headers=auth(token))).json()
    assert (back["userName"], back["title"], back["active"]) == ("una@example.com", "Clerk", True)


async def test_past_the_wait_bound_the_answer_is_503_and_the_import_goes_on(
    client: httpx.AsyncClient, token: str, settings: Settings, conn: Any, tenant: str
) -> None:
    hurried = create_app(dataclasses.replace(settings, scim_wait_s=0.001))
    async with (
        LifespanManager(hurried) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://idp") as http,
    ):
        response = await http.post("/scim/v2/Users", json=new_user("slow@example.com"), headers=auth(token))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json()["schemas"] == [ERROR] and "goes on" in response.json()["detail"]
    import_id = await conn.fetchval("SELECT max(id) FROM imports WHERE tenant_id = $1", tenant)
    assert (await wait_final(conn, import_id))["state"] == "done"
    # The identity provider's retry finds the person: 409, and a look-up by userName finds them.
    retry = await client.post("/scim/v2/Users", json=new_user("slow@example.com"), headers=auth(token))
    assert retry.status_code == 409 and retry.json()["scimType"] == "uniqueness"
