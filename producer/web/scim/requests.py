"""What every SCIM route reads from its request: the tenant (by SCIM token), a JSON body, list parameters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.requests import Request

from producer.web.context import pool_of
from producer.web.scim.errors import ScimError
from producer.web.scim.filters import AttrPath, Filter, FilterError, parse_attr, parse_filter
from producer.web.scim.schemas import MAX_RESULTS, RESOURCE_SCHEMAS
from producer.web.tokens import Principal, verify_token

MAX_BODY_BYTES = 1024 * 1024
_JSON_TYPES = ("application/scim+json", "application/json")


async def scim_principal(request: Request) -> Principal:
    """The SCIM token's principal; 401 (a SCIM error, with the Bearer challenge) for anything else."""
    challenge = {"WWW-Authenticate": 'Bearer realm="scim"'}
    scheme, _, secret = request.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ScimError(401, "send Authorization: Bearer <the tenant's SCIM token>", headers=challenge)
    principal = await verify_token(pool_of(request), secret.strip(), scim=True)
    if principal is None or principal.tenant is None:
        raise ScimError(401, "invalid or revoked SCIM token", headers=challenge)
    structlog.contextvars.bind_contextvars(token=principal.token_id, tenant=principal.tenant)
    return principal


async def json_body(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The request's JSON body: SCIM's media type (or plain JSON), at most ``limit`` bytes, parsed."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _JSON_TYPES:
        raise ScimError(
            415, f"send the body as application/scim+json, not {media or 'nothing'!r}", "invalidSyntax"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ScimError(413, f"the body is over {limit} bytes", "tooLarge")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ScimError(413, f"the body is over {limit} bytes", "tooLarge")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ScimError(400, f"the body is not JSON: {exc}", "invalidSyntax") from None


@dataclass(frozen=True)
class ListQuery:
    """A list request's filter, 1-based ``startIndex``, ``count`` and projection."""

    filter: Filter | None
    start_index: int
    count: int
    attributes: list[AttrPath]
    excluded: list[AttrPath]


def _integer(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer, not {raw!r}", "invalidValue") from None


def _paths(raw: str | None) -> list[AttrPath]:
    if not raw:
        return []
    try:
        return [parse_attr(part.strip(), RESOURCE_SCHEMAS) for part in raw.split(",") if part.strip()]
    except FilterError as exc:
        raise ScimError(400, str(exc), "invalidPath") from None


def list_query(request: Request, given: Mapping[str, str] | None = None) -> ListQuery:
    """The list parameters (RFC 7644 §3.4.2): startIndex below 1 is 1, count is 0 to MAX_RESULTS.

    ``given``: a search body's (POST .search), instead of the query string's.
    """
    params: Mapping[str, str] = request.query_params if given is None else given
    text = params.get("filter")
    try:
        parsed = parse_filter(text, RESOURCE_SCHEMAS) if text else None
    except FilterError as exc:
        raise ScimError(400, f"filter: {exc}", "invalidFilter") from None
    if params.get("sortBy"):
        raise ScimError(400, "sorting is not supported (ServiceProviderConfig: sort)", "invalidValue")
    return ListQuery(
        filter=parsed,
        start_index=max(1, _integer(params, "startIndex", 1)),
        count=min(MAX_RESULTS, max(0, _integer(params, "count", MAX_RESULTS))),
        attributes=_paths(params.get("attributes")),
        excluded=_paths(params.get("excludedAttributes")),
    )


def project(resource: dict[str, Any], attributes: list[AttrPath], excluded: list[AttrPath]) -> dict[str, Any]:
    """The resource with only ``attributes`` (id and schemas always), or without ``excluded``."""
    if attributes:
        kept: dict[str, Any] = {"schemas": resource["schemas"], "id": resource["id"]}
        for path in attributes:
            _copy(resource, kept, path)
        return kept
    result = dict(resource)
    for path in excluded:
        _drop(result, path)
    return result


def _lookup(container: dict[str, Any], name: str) -> str | None:
    return next((k for k in container if k.lower() == name.lower()), None)


def _copy(source: dict[str, Any], target: dict[str, Any], path: AttrPath) -> None:
    if path.schema and path.schema != RESOURCE_SCHEMAS[0]:
        key = _lookup(source, path.schema)
        if key is None or not isinstance(source[key], dict):
            return
        source, target = source[key], target.setdefault(key, {})
    attr = _lookup(source, path.attr)
    if attr is None or attr in ("schemas", "id"):
        return
    if path.sub is None or not isinstance(source[attr], (dict, list)):
        target[attr] = source[attr]
    elif isinstance(source[attr], dict):
        sub = _lookup(source[attr], path.sub)
        if sub is not None:
            target.setdefault(attr, {})[sub] = source[attr][sub]
    else:
        target[attr] = [{k: v for k, v in e.items() if k.lower() == path.sub.lower()} for e in source[attr]]


def _drop(resource: dict[str, Any], path: AttrPath) -> None:
    container = resource
    if path.schema and path.schema != RESOURCE_SCHEMAS[0]:
        key = _lookup(resource, path.schema)
        if key is None or not isinstance(resource[key], dict):
            return
        container = resource[key] = dict(resource[key])
    attr = _lookup(container, path.attr)
    if attr is None or attr in ("schemas", "id"):
        return
    if path.sub is None:
        del container[attr]
    elif isinstance(container[attr], dict):
        inner = container[attr] = dict(container[attr])
        sub = _lookup(inner, path.sub)
        if sub is not None:
            del inner[sub]
