"""``/ServiceProviderConfig``, ``/ResourceTypes``, ``/Schemas`` (RFC 7644 §4): public, one for all tenants."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from producer.web.scim.errors import ScimError, scim_endpoint, scim_json
from producer.web.scim.schemas import LIST_RESPONSE, RESOURCE_TYPES, SCHEMAS, service_provider_config
from producer.web.scim.users import base_url


def _located(document: dict[str, Any], base: str) -> dict[str, Any]:
    meta = dict(document["meta"])
    meta["location"] = base + meta["location"]
    return document | {"meta": meta}


def _listed(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(documents),
        "startIndex": 1,
        "itemsPerPage": len(documents),
        "Resources": documents,
    }


@scim_endpoint
async def provider_config(request: Request) -> Response:
    """GET /ServiceProviderConfig."""
    return scim_json(service_provider_config(base_url(request)))


@scim_endpoint
async def resource_types(request: Request) -> Response:
    """GET /ResourceTypes and /ResourceTypes/{name}."""
    base = base_url(request)
    name = request.path_params.get("name")
    if name is None:
        return scim_json(_listed([_located(d, base) for d in RESOURCE_TYPES.values()]))
    if name not in RESOURCE_TYPES:
        raise ScimError(404, f"no resource type {name}")
    return scim_json(_located(RESOURCE_TYPES[name], base))


@scim_endpoint
async def schemas(request: Request) -> Response:
    """GET /Schemas and /Schemas/{urn}."""
    base = base_url(request)
    urn = request.path_params.get("urn")
    if urn is None:
        return scim_json(_listed([_located(d, base) for d in SCHEMAS.values()]))
    if urn not in SCHEMAS:
        raise ScimError(404, f"no schema {urn}")
    return scim_json(_located(SCHEMAS[urn], base))
