"""``/scim/v2/Groups``: the tenant's teams as SCIM Groups; a membership change is an import of its members.

A Group's members are the people whose primary or secondary team it is.
Adding a member adds the team to their secondary teams (their primary team,
``department``, is theirs to keep); removing one takes it from their secondary
teams, or clears their primary team if it was that. Each change is a row of
the member (all their columns as stored, the teams changed) in one import
for the request: the same rules as a file, a team's spelling included
("Marketing" and " marketing" are one team, spelled as it was first). A
team's name is its identity here, so ``displayName`` cannot be changed
(``mutability``). DELETE empties the team (never deletes its people) and the
Group answers 404 while it stays empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from core.columns import SECONDARY_TEAM_SEPARATOR
from core.intake.validation import team_key
from core.rows import ensure_teams
from producer.queries import QUERIES
from producer.web.context import pool_of, settings_of
from producer.web.scim.errors import ScimError, scim_endpoint, scim_json
from producer.web.scim.filters import get_key, matches
from producer.web.scim.patch import operations
from producer.web.scim.planning import SCIM_PEOPLE_BY_IDS
from producer.web.scim.requests import ListQuery, json_body, list_query, project, scim_principal
from producer.web.scim.resources import UserRow, row_of_user, user_resource
from producer.web.scim.schemas import GROUP
from producer.web.scim.users import base_url, listing, search_query, users_page
from producer.web.scim.writes import raise_for, write_rows

SCIM_GROUPS = QUERIES["scim_groups"]
SCIM_RECORD_GROUP_DELETION = QUERIES["scim_record_group_deletion"]
SCIM_FORGET_GROUP_DELETION = QUERIES["scim_forget_group_deletion"]

_MAX_ID = 2**63 - 1
MAX_TEAM_NAME = 200


def group_resource(team: asyncpg.Record, base: str) -> dict[str, Any]:
    """A team (``scim_groups``) as the Group answered."""
    return {
        "schemas": [GROUP],
        "id": str(team["id"]),
        "displayName": team["name"],
        "members": [
            {"value": str(pid), "$ref": f"{base}/Users/{pid}", "type": "User"} for pid in team["member_ids"]
        ],
        "meta": {
            "resourceType": "Group",
            "created": team["created_at"].isoformat().replace("+00:00", "Z"),
            "location": f"{base}/Groups/{team['id']}",
        },
    }


async def _team(pool: asyncpg.Pool, tenant: str, raw: str) -> asyncpg.Record:
    team = None
    if raw.isdigit() and int(raw) <= _MAX_ID:
        team = await pool.fetchrow(SCIM_GROUPS, tenant, int(raw))
    if team is None:
        raise ScimError(404, f"no Group {raw}")
    return team


def _member_ids(value: Any) -> list[int]:
    members = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
    if members is None or not all(isinstance(m, dict) for m in members):
        raise ScimError(400, "members must be a list of {value: a User's id}", "invalidValue")
    ids = [str(get_key(m, "value") or "") for m in members]
    if not all(i.isdigit() and int(i) <= _MAX_ID for i in ids):
        raise ScimError(400, "a member's value must be a User's id", "invalidValue")
    return [int(i) for i in dict.fromkeys(ids)]


async def _membership_rows(
    pool: asyncpg.Pool, tenant: str, name: str, add: Iterable[int], remove: Iterable[int], base: str
) -> list[UserRow]:
    adding, removing = set(add), set(remove) - set(add)
    people = {p["id"]: p for p in await pool.fetch(SCIM_PEOPLE_BY_IDS, tenant, sorted(adding | removing))}
    missing = sorted((adding | removing) - set(people))
    if missing:
        raise ScimError(400, f"no User {missing[0]} (a member must be a User of this tenant)", "invalidValue")
    key, rows = team_key(name), []
    for pid in sorted(people):
        person = people[pid]
        secondary = [t for t in person["secondary_teams"] if team_key(t) != key]
        row = row_of_user(user_resource(person, base), None, secondary)
        in_primary = person["primary_team"] is not None and team_key(person["primary_team"]) == key
        if pid in adding and not in_primary:
            row = row_of_user(user_resource(person, base), None, [*secondary, name])
        elif pid in removing and in_primary:
            row.cells["primary_team"] = ""
        if person["status"] != "active":
            row.flags = {"active": False}  # a membership change never reactivates anyone
        rows.append(row)
    return rows


async def _write(request: Request, tenant: str, token_id: int, rows: list[UserRow], what: str) -> None:
    if not rows:
        return
    outcomes = await write_rows(
        pool_of(request), tenant, token_id, rows, what, settings_of(request).scim_wait_s
    )
    for outcome in outcomes:
        raise_for(outcome)


def _display_name(body: Any) -> str:
    name = get_key(body, "displayName") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ScimError(400, "displayName is required: the team's name", "invalidValue")
    if SECONDARY_TEAM_SEPARATOR in name or len(name) > MAX_TEAM_NAME:
        raise ScimError(
            400,
            f"a team's name has at most {MAX_TEAM_NAME} characters and no {SECONDARY_TEAM_SEPARATOR!r}",
            "invalidValue",
        )
    return name.strip()


async def groups_page(
    pool: asyncpg.Pool, tenant: str, query: ListQuery, base: str
) -> tuple[int, list[dict[str, Any]]]:
    """How many Groups match the query (``displayName eq`` ignores case, as teams do), and its page."""
    resources = [group_resource(t, base) for t in await pool.fetch(SCIM_GROUPS, tenant, None)]
    found = [r for r in resources if query.filter is None or matches(query.filter, r)]
    page = found[query.start_index - 1 : query.start_index - 1 + query.count]
    return len(found), [project(r, query.attributes, query.excluded) for r in page]


@scim_endpoint
async def list_groups(request: Request) -> Response:
    """GET /Groups: every team, filtered and paged."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    query = list_query(request)
    total, page = await groups_page(pool_of(request), principal.tenant, query, base_url(request))
    return listing(query, total, page)


@scim_endpoint
async def search_groups(request: Request) -> Response:
    """POST /Groups/.search."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    query = await search_query(request)
    total, page = await groups_page(pool_of(request), principal.tenant, query, base_url(request))
    return listing(query, total, page)


@scim_endpoint
async def search_everything(request: Request) -> Response:
    """POST /.search: Users, then Groups, filtered and paged as one list (RFC 7644 §3.4.3)."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    query = await search_query(request)
    pool, base = pool_of(request), base_url(request)
    users_total, users = await users_page(pool, principal.tenant, query, base)
    rest = dataclasses.replace(
        query, start_index=max(1, query.start_index - users_total), count=query.count - len(users)
    )
    groups_total, groups = await groups_page(pool, principal.tenant, rest, base)
    return listing(query, users_total + groups_total, users + groups)


@scim_endpoint
async def get_group(request: Request) -> Response:
    """GET /Groups/{id}."""
    principal = await scim_principal(request)
    query = list_query(request)
    assert principal.tenant is not None
    team = await _team(pool_of(request), principal.tenant, request.path_params["group_id"])
    return scim_json(project(group_resource(team, base_url(request)), query.attributes, query.excluded))


async def _answer(request: Request, tenant: str, team_id: int, status: int = 200) -> Response:
    resource = group_resource(await _team(pool_of(request), tenant, str(team_id)), base_url(request))
    return scim_json(resource, status, headers={"Location": resource["meta"]["location"]})


@scim_endpoint
async def create_group(request: Request) -> Response:
    """POST /Groups: the team (created, or 409 when a team of that name is visible) and its members."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    body = await json_body(request)
    name = _display_name(body)
    members = _member_ids(get_key(body, "members") or [])
    pool = pool_of(request)
    visible = [
        t
        for t in await pool.fetch(SCIM_GROUPS, principal.tenant, None)
        if team_key(t["name"]) == team_key(name)
    ]
    if visible:
        raise ScimError(409, f"Group {visible[0]['id']} is the team {visible[0]['name']!r}", "uniqueness")
    rows = await _membership_rows(pool, principal.tenant, name, members, [], base_url(request))
    async with pool.acquire() as conn, conn.transaction():
        team_id = (await ensure_teams(conn, principal.tenant, [name]))[name]
        await conn.execute(SCIM_FORGET_GROUP_DELETION, principal.tenant, team_id)
    try:
        await _write(request, principal.tenant, principal.token_id, rows, "SCIM POST /Groups")
    except ScimError:
        # Refused: the team, empty, is hidden again as if never posted (teams are never deleted).
        await pool.execute(SCIM_RECORD_GROUP_DELETION, principal.tenant, team_id)
        raise
    return await _answer(request, principal.tenant, team_id, 201)


@scim_endpoint
async def replace_group(request: Request) -> Response:
    """PUT /Groups/{id}: exactly these members."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    team = await _team(pool_of(request), principal.tenant, request.path_params["group_id"])
    body = await json_body(request)
    if team_key(_display_name(body)) != team_key(team["name"]):
        raise ScimError(400, "a team's name is its identity here: displayName cannot change", "mutability")
    wanted = _member_ids(get_key(body, "members") or [])
    current = list(team["member_ids"])
    rows = await _membership_rows(
        pool_of(request),
        principal.tenant,
        team["name"],
        [p for p in wanted if p not in current],
        [p for p in current if p not in wanted],
        base_url(request),
    )
    await _write(request, principal.tenant, principal.token_id, rows, f"SCIM PUT /Groups/{team['id']}")
    return await _answer(request, principal.tenant, team["id"])


@scim_endpoint
async def patch_group(request: Request) -> Response:
    """PATCH /Groups/{id}: members added and removed (Okta's and Entra's forms)."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    team = await _team(pool_of(request), principal.tenant, request.path_params["group_id"])
    add: list[int] = []
    remove: list[int] = []
    for operation in operations(await json_body(request)):
        op = str(get_key(operation, "op") or "").lower()
        path = str(get_key(operation, "path") or "")
        value = get_key(operation, "value")
        if not path and isinstance(value, dict):
            if get_key(value, "displayName") not in (None, team["name"]):
                raise ScimError(
                    400, "a team's name is its identity here: displayName cannot change", "mutability"
                )
            path, value = (
                ("members", get_key(value, "members"))
                if get_key(value, "members") is not None
                else ("", None)
            )
            if not path:
                continue
        lowered = path.lower()
        if lowered == "displayname":
            if op != "remove" and isinstance(value, str) and team_key(value) == team_key(team["name"]):
                continue
            raise ScimError(
                400, "a team's name is its identity here: displayName cannot change", "mutability"
            )
        if lowered.startswith("members[") and op == "remove":
            inner = path[path.index("[") + 1 : path.rindex("]")] if "]" in path else ""
            member = inner.split('"')[1] if inner.count('"') >= 2 and "value eq" in inner.lower() else ""
            remove += _member_ids([{"value": member}])
            continue
        if lowered != "members":
            raise ScimError(
                400, f"a Group's {path or 'value'} cannot be patched here: members only", "invalidPath"
            )
        if op == "add":
            add += _member_ids(value)
        elif op == "remove":
            remove += list(team["member_ids"]) if value is None else _member_ids(value)
        elif op == "replace":
            wanted = _member_ids(value)
            add += wanted
            remove += [p for p in team["member_ids"] if p not in wanted]
        else:
            raise ScimError(400, f"op must be add, replace or remove, not {op!r}", "invalidSyntax")
    current = set(team["member_ids"])
    add = [p for p in dict.fromkeys(add) if p not in current and p not in remove]
    remove = [p for p in dict.fromkeys(remove) if p in current]
    rows = await _membership_rows(
        pool_of(request), principal.tenant, team["name"], add, remove, base_url(request)
    )
    await _write(request, principal.tenant, principal.token_id, rows, f"SCIM PATCH /Groups/{team['id']}")
    return await _answer(request, principal.tenant, team["id"])


@scim_endpoint
async def delete_group(request: Request) -> Response:
    """DELETE /Groups/{id}: the team emptied (its people kept), then 404 while it stays empty."""
    principal = await scim_principal(request)
    assert principal.tenant is not None
    pool = pool_of(request)
    team = await _team(pool, principal.tenant, request.path_params["group_id"])
    rows = await _membership_rows(
        pool, principal.tenant, team["name"], [], team["member_ids"], base_url(request)
    )
    await _write(request, principal.tenant, principal.token_id, rows, f"SCIM DELETE /Groups/{team['id']}")
    await pool.execute(SCIM_RECORD_GROUP_DELETION, principal.tenant, team["id"])
    return Response(status_code=204)
