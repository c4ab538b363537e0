"""``/scim/v2/Users``: people as SCIM Users; every write an import (:mod:`producer.web.scim.writes`)."""

from __future__ import annotations

from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response

from producer.queries import QUERIES
from producer.web.context import pool_of, settings_of
from producer.web.scim.errors import ScimError, scim_endpoint, scim_json
from producer.web.scim.filters import equality_keys, matches
from producer.web.scim.planning import (
    SCIM_PEOPLE_BY_IDS,
    SCIM_PEOPLE_BY_KEY,
    after_write,
    parse_id,
    plan_user_write,
    stored_person,
)
from producer.web.scim.requests import ListQuery, json_body, list_query, project, scim_principal
from producer.web.scim.resources import user_resource
from producer.web.scim.schemas import LIST_RESPONSE, SEARCH_REQUEST
from producer.web.scim.writes import write_rows

SCIM_PEOPLE_PAGE = QUERIES["scim_people_page"]

_PAGE = 1_000
_MAX_ID = 2**63 - 1


def base_url(request: Request) -> str:
    """The service's base URL as the client reached it (``…/scim/v2``)."""
    return str(request.base_url).rstrip("/") + "/scim/v2"


async def _candidates(pool: asyncpg.Pool, tenant: str, query: ListQuery) -> list[asyncpg.Record] | None:
    """The people an indexed key narrows the filter to; None when the filter has no key."""
    keys = equality_keys(query.filter) if query.filter is not None else None
    if not keys:
        return None
    if "id" in keys:
        if not keys["id"].isdigit() or int(keys["id"]) > _MAX_ID:
            return []
        return list(await pool.fetch(SCIM_PEOPLE_BY_IDS, tenant, [int(keys["id"])]))
    email = keys.get("username") or keys.get("emails.value") or keys.get("emails")
    external = keys.get("externalid")
    if email is None and external is None:
        return None
    return list(await pool.fetch(SCIM_PEOPLE_BY_KEY, tenant, email, external))


@scim_endpoint
async def list_users(request: Request) -> Response:
    """GET /Users: filtered (evaluated on the resources), paged by startIndex and count."""
    return await _listed(request, list_query(request))


@scim_endpoint
async def search_users(request: Request) -> Response:
    """POST /Users/.search: the same list, its parameters in a SearchRequest body (RFC 7644 §3.4.3)."""
    return await _listed(request, await search_query(request))


async def search_query(request: Request) -> ListQuery:
    """A SearchRequest body's parameters (POST .search)."""
    body = await json_body(request)
    if not isinstance(body, dict) or SEARCH_REQUEST.lower() not in {
        str(s).lower() for s in body.get("schemas") or []
    }:
        raise ScimError(400, f"a search is a {SEARCH_REQUEST} message", "invalidSyntax")
    params = {
        name: ",".join(value) if isinstance(value, list) else str(value)
        for name, value in body.items()
        if name != "schemas" and value is not None
    }
    return list_query(request, params)


def listing(query: ListQuery, total: int, resources: list[dict[str, Any]]) -> Response:
    """A ListResponse of one page."""
    return scim_json(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": query.start_index,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


async def _listed(request: Request, query: ListQuery) -> Response:
    principal = await scim_principal(request)
    assert principal.tenant is not None
    total, page = await users_page(pool_of(request), principal.tenant, query, base_url(request))
    return listing(query, total, page)


async def users_page(
    pool: asyncpg.Pool, tenant: str, query: ListQuery, base: str
) -> tuple[int, list[dict[str, Any]]]:
    """How many Users match the query, and its page of them (projected)."""
    candidates = await _candidates(pool, tenant, query)
    matched: list[dict[str, Any]] = []
    total = 0
    first, last = query.start_index, query.start_index + query.count - 1

    def consider(record: asyncpg.Record) -> None:
        nonlocal total
        resource = user_resource(record, base)
        if query.filter is None or matches(query.filter, resource):
            total += 1
            if first <= total <= last:
                matched.append(project(resource, query.attributes, query.excluded))

    if candidates is not None:
        for record in candidates:
            consider(record)
    else:
        after = 0
        while page := await pool.fetch(SCIM_PEOPLE_PAGE, tenant, after, _PAGE):
            for record in page:
                consider(record)
            after = page[-1]["id"]
    return total, matched


async def _write_one(request: Request, method: str, status: int = 200) -> Response:
    principal = await scim_principal(request)
    assert principal.tenant is not None
    pool, base = pool_of(request), base_url(request)
    person_id = parse_id(request.path_params["user_id"]) if method != "POST" else None
    if person_id is not None:
        await stored_person(pool, principal.tenant, person_id)  # 404 before reading the body
    body = await json_body(request) if method != "DELETE" else None
    write = await plan_user_write(pool, principal.tenant, method, person_id, body, base)
    where = f"/Users/{person_id}" if person_id is not None else "/Users"
    outcomes = await write_rows(
        pool,
        principal.tenant,
        principal.token_id,
        [write.row],
        f"SCIM {method} {where}",
        settings_of(request).scim_wait_s,
    )
    reached = write.settle(outcomes[0])
    await after_write(pool, principal.tenant, write, reached)
    if method == "DELETE":
        return Response(status_code=204)
    resource = user_resource(await stored_person(pool, principal.tenant, reached), base)
    return scim_json(resource, status, headers={"Location": resource["meta"]["location"]})


@scim_endpoint
async def create_user(request: Request) -> Response:
    """POST /Users: a one-row import; 409 ``uniqueness`` when the userName is someone's."""
    return await _write_one(request, "POST", 201)


@scim_endpoint
async def get_user(request: Request) -> Response:
    """GET /Users/{id}."""
    principal = await scim_principal(request)
    query = list_query(request)
    assert principal.tenant is not None
    person = await stored_person(pool_of(request), principal.tenant, parse_id(request.path_params["user_id"]))
    resource = user_resource(person, base_url(request))
    return scim_json(project(resource, query.attributes, query.excluded))


@scim_endpoint
async def replace_user(request: Request) -> Response:
    """PUT /Users/{id}: the whole person (absent attributes cleared); a new userName renames them."""
    return await _write_one(request, "PUT")


@scim_endpoint
async def patch_user(request: Request) -> Response:
    """PATCH /Users/{id}: the operations applied to the User as answered, then written as a PUT is."""
    return await _write_one(request, "PATCH")


@scim_endpoint
async def delete_user(request: Request) -> Response:
    """DELETE /Users/{id}: the person is deactivated (never deleted) and answers 404 from now on."""
    return await _write_one(request, "DELETE")
