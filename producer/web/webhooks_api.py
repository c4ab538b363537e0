"""The HTTP API's webhooks and events feed (Starlette routes, mounted with ``producer.web.api``'s).

- ``POST /api/webhooks`` ``{"url", "events"?}``: register an endpoint; its
  signing secret is in the answer, once. ``GET /api/webhooks``: the tenant's
  endpoints. ``DELETE /api/webhooks/{id}``; ``POST /api/webhooks/{id}/rotate``:
  a new secret, the old one valid for ``WEBHOOK_ROTATION_GRACE_S`` more.
- ``GET /api/webhooks/deliveries``, ``POST /api/webhooks/deliveries/{id}/redeliver``.
- ``GET /api/events?after=<cursor>``: the tenant's events in order, for
  services that poll or were down.

A service token acts for its tenant; an operator names one with ``?tenant=``.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.webhooks import endpoints
from producer.web.api import _MAX_ID, _number, _principal, _tenant
from producer.web.context import pool_of, settings_of
from producer.web.errors import ApiError
from producer.webhooks import FEED_PAGE, events_after, list_deliveries, redeliver

log = structlog.get_logger(__name__)

_MAX_BODY = 16 * 1024


async def _tenant_of(request: Request) -> str:
    tenant = _tenant(request, await _principal(request), required=True)
    assert tenant is not None
    return tenant


async def _json_body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise ApiError(413, f"the body is over {_MAX_BODY} bytes")
    example = '{"url": "https://example.com/hooks", "events": ["import.completed"]}'
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, f"the body is not valid JSON: send e.g. {example}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, e.g. {example}")
    return data


async def add_webhook(request: Request) -> Response:
    tenant = await _tenant_of(request)
    data = await _json_body(request)
    url, events = data.get("url"), data.get("events")
    if not isinstance(url, str) or not url:
        raise ApiError(400, 'url is required: {"url": "https://example.com/hooks"}')
    if events is not None and (not isinstance(events, list) or not all(isinstance(e, str) for e in events)):
        raise ApiError(400, "events must be a list of event type names")
    settings = settings_of(request)
    async with pool_of(request).acquire() as conn:
        new = await endpoints.add_endpoint(
            conn, tenant, url, events, allow_loopback=settings.webhook_allow_loopback
        )
    log.info("api.webhook.added", tenant=tenant, endpoint_id=new.endpoint["id"])
    return JSONResponse({**new.endpoint, "secret": new.secret}, status_code=201)


async def list_webhooks(request: Request) -> Response:
    tenant = await _tenant_of(request)
    return JSONResponse({"webhooks": await endpoints.list_endpoints(pool_of(request), tenant)})


async def remove_webhook(request: Request) -> Response:
    tenant = await _tenant_of(request)
    endpoint_id = _path_id(request, "endpoint_id")
    await endpoints.remove_endpoint(pool_of(request), tenant, endpoint_id)
    return JSONResponse({"id": endpoint_id, "removed": True})


async def rotate_webhook(request: Request) -> Response:
    tenant = await _tenant_of(request)
    endpoint_id = _path_id(request, "endpoint_id")
    grace = settings_of(request).webhook_rotation_grace_s
    secret = await endpoints.rotate_secret(pool_of(request), tenant, endpoint_id, grace)
    return JSONResponse({"id": endpoint_id, "secret": secret, "previous_secret_valid_s": grace})


async def deliveries(request: Request) -> Response:
    tenant = await _tenant_of(request)
    state = request.query_params.get("state") or None
    limit = _number(request, "limit", 50, 1, 1000) or 50
    return JSONResponse({"deliveries": await list_deliveries(pool_of(request), tenant, state, limit)})


async def redeliver_one(request: Request) -> Response:
    tenant = await _tenant_of(request)
    delivery_id = _path_id(request, "delivery_id")
    message = await redeliver(pool_of(request), delivery_id, tenant)
    return JSONResponse({"id": delivery_id, "message": message})


async def events(request: Request) -> Response:
    tenant = await _tenant_of(request)
    after = _number(request, "after", 0, 0, _MAX_ID) or 0
    limit = _number(request, "limit", FEED_PAGE, 1, 1000) or FEED_PAGE
    return JSONResponse(await events_after(pool_of(request), tenant, after, limit))


def _path_id(request: Request, name: str) -> int:
    value: int = request.path_params[name]
    if value > _MAX_ID:
        raise ApiError(404, f"no {name.replace('_id', '')} {value}")
    return value


ROUTES = [
    Route("/api/webhooks", add_webhook, methods=["POST"]),
    Route("/api/webhooks", list_webhooks, methods=["GET"]),
    Route("/api/webhooks/deliveries", deliveries, methods=["GET"]),
    Route("/api/webhooks/deliveries/{delivery_id:int}/redeliver", redeliver_one, methods=["POST"]),
    Route("/api/webhooks/{endpoint_id:int}", remove_webhook, methods=["DELETE"]),
    Route("/api/webhooks/{endpoint_id:int}/rotate", rotate_webhook, methods=["POST"]),
    Route("/api/events", events, methods=["GET"]),
]
