"""The SCIM service's Groups (teams) and Bulk requests, against the real services and worker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.support.scim import (
    BULK,
    ENTERPRISE,
    auth,
    client,
    create,
    new_user,
    patch_op,
    settings,
    token,
)

__all__ = ["client", "settings", "token"]  # the fixtures


async def test_group_push_adds_and_removes_members_as_teams(
    client: httpx.AsyncClient, token: str, conn: Any, tenant: str
) -> None:
    """Okta's group push: find the group by displayName, create it, add members, remove one, delete it."""
    ann = await create(client, token, new_user("ann@example.com", **{ENTERPRISE: {"department": "Sales"}}))
    bob = await create(client, token, new_user("bob@example.com"))
    lookup = await client.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "Marketing"'}, headers=auth(token)
    )
    assert lookup.json()["totalResults"] == 0
    made = await client.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Marketing",
            "members": [],
        },
        headers=auth(token),
    )
    assert made.status_code == 201, made.text
    group = made.json()
    path = f"/scim/v2/Groups/{group['id']}"
    twin = await client.post(
        "/scim/v2/Groups",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": " marketing"},
        headers=auth(token),
    )
    assert twin.status_code == 409 and twin.json()["scimType"] == "uniqueness"  # one team, whatever the case
    added = await client.patch(
        path,
        json=patch_op(
            {"op": "add", "path": "members", "value": [{"value": ann["id"]}, {"value": bob["id"]}]}
        ),
        headers=auth(token),
    )
    assert added.status_code == 200, added.text
    assert {m["value"] for m in added.json()["members"]} == {ann["id"], bob["id"]}
    assert (await client.get(f"/scim/v2/Users/{ann['id']}", headers=auth(token))).json()[ENTERPRISE][
        "department"
    ] == "Sales"  # the primary team stays; the group is a secondary team
    found = await client.get(
        "/scim/v2/Groups", params={"filter": 'displayName eq "MARKETING"'}, headers=auth(token)
    )
    assert [g["id"] for g in found.json()["Resources"]] == [group["id"]]
    removed = await client.patch(
        path, json=patch_op({"op": "Remove", "path": f'members[value eq "{bob["id"]}"]'}), headers=auth(token)
    )
    assert [m["value"] for m in removed.json()["members"]] == [ann["id"]]
    # Entra's forms: capitalised ops, a remove with a value list.
    entra_add = patch_op({"op": "Add", "path": "members", "value": [{"value": bob["id"]}]})
    assert len((await client.patch(path, json=entra_add, headers=auth(token))).json()["members"]) == 2
    entra_remove = patch_op({"op": "Remove", "path": "members", "value": [{"value": ann["id"]}]})
    after = (await client.patch(path, json=entra_remove, headers=auth(token))).json()
    assert [m["value"] for m in after["members"]] == [bob["id"]]
    gone = await client.delete(path, headers=auth(token))
    assert gone.status_code == 204
    assert (await client.get(path, headers=auth(token))).status_code == 404
    people = await conn.fetchval(
        "SELECT count(*) FROM people WHERE tenant_id = $1 AND status = 'active'", tenant
    )
    assert people == 2  # emptied, nobody deleted
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM people WHERE tenant_id = $1 AND secondary_team_ids <> '{}'", tenant
        )
        == 0
    )


async def test_a_bulk_is_one_import_with_a_row_per_operation(
    client: httpx.AsyncClient, token: str, conn: Any, tenant: str
) -> None:
    ops: list[dict[str, Any]] = [
        {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": new_user(f"p{i}@example.com")}
        for i in range(5)
    ]
    ops.append({"method": "POST", "path": "/Users", "bulkId": "bad", "data": new_user("nope")})
    ops.append(
        {
            "method": "PATCH",
            "path": "/Users/bulkId:b0",
            "data": patch_op({"op": "replace", "path": "title", "value": "First"}),
        }
    )
    response = await client.post(
        "/scim/v2/Bulk", json={"schemas": [BULK], "Operations": ops}, headers=auth(token)
    )
    assert response.status_code == 200, response.text
    results = response.json()["Operations"]
    assert [r["status"] for r in results] == ["201"] * 5 + ["400", "200"]
    assert results[5]["response"]["scimType"] == "invalidValue" and results[5]["bulkId"] == "bad"
    first = results[0]["location"]
    assert results[6]["location"] == first
    assert (await client.get(first.removeprefix("http://idp"), headers=auth(token))).json()[
        "title"
    ] == "First"
    imports = await conn.fetch(
        "SELECT i.id, i.total_rows, i.state FROM imports i WHERE i.tenant_id = $1 ORDER BY i.id", tenant
    )
    # the six creations in one import (a row, a message each; the bad one refused as a file's row
    # is), then the PATCH of one of them
    assert [(r["total_rows"], r["state"]) for r in imports] == [(6, "done"), (1, "done")]
    # Their completions are reported by the worker's housekeeping, batched: each import exactly once.
    deadline = time.monotonic() + 30
    while await conn.fetchval(
        "SELECT count(*) FROM imports WHERE tenant_id = $1 AND origin = 'scim' AND NOT scim_reported", tenant
    ):
        assert time.monotonic() < deadline, "the SCIM imports were never reported"
        await asyncio.sleep(0.1)
    payloads = await conn.fetch("SELECT payload FROM webhook_events WHERE tenant_id = $1", tenant)
    reported = sorted(i for p in payloads for i in p["payload"]["data"]["scim"]["imports"])
    assert reported == [r["id"] for r in imports] and 1 <= len(payloads) <= 2


async def test_fail_on_errors_and_oversized_bulks(
    client: httpx.AsyncClient, token: str, conn: Any, tenant: str
) -> None:
    ops = [
        {"method": "POST", "path": "/Users", "bulkId": "x", "data": new_user("bad-address")},
        {"method": "DELETE", "path": "/Users/424242"},
        {"method": "POST", "path": "/Users", "bulkId": "y", "data": new_user("late@example.com")},
    ]
    body = {"schemas": [BULK], "failOnErrors": 2, "Operations": ops}
    response = await client.post("/scim/v2/Bulk", json=body, headers=auth(token))
    assert [r["status"] for r in response.json()["Operations"]] == ["400", "404"]
    assert await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1", tenant) == 0
    many = {"schemas": [BULK], "Operations": [{"method": "DELETE", "path": "/Users/1"}] * 1001}
    too_many = await client.post("/scim/v2/Bulk", json=many, headers=auth(token))
    assert too_many.status_code == 413 and too_many.json()["scimType"] == "tooMany"
