"""The operators' view of webhook deliveries: ``/webhooks`` (pending, failing with the last
error, dead, delivered) and its action, ``POST /webhooks/deliveries/{id}/redeliver``.

Signed in and CSRF-checked like the dashboard's other pages (``producer.web.operators``);
the redeliver is ``producer.webhooks.redeliver``, as ``bulk-import webhook redeliver``.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import BulkImportError
from core.vocabulary import DeliveryState
from producer.queries import QUERIES
from producer.web import operators
from producer.web.context import pool_of
from producer.web.dashboard import back_with, flash
from producer.web.pages import page
from producer.webhooks import list_deliveries, redeliver

WEBHOOK_DELIVERY_COUNTS = QUERIES["webhook_delivery_counts"]

log = structlog.get_logger(__name__)

DELIVERIES_SHOWN = 200


async def webhooks_page(request: Request) -> Response:
    who = await operators.operator(request)
    state = request.query_params.get("state") or None
    if state not in (None, *tuple(DeliveryState)):
        state = None
    pool = pool_of(request)
    shown = await list_deliveries(pool, request.query_params.get("tenant") or None, state, DELIVERIES_SHOWN)
    counts = await pool.fetchrow(WEBHOOK_DELIVERY_COUNTS)
    return page(
        "webhooks.html",
        csrf=who.csrf_token,
        by_cookie=who.by_cookie,
        deliveries=shown,
        counts=dict(counts),
        state=state,
        states=tuple(DeliveryState),
        shown_max=DELIVERIES_SHOWN,
        **flash(request, who),
    )


async def redeliver_action(request: Request) -> Response:
    who, _ = await operators.operator_post(request)
    delivery_id = request.path_params["delivery_id"]
    try:
        message = await redeliver(pool_of(request), delivery_id, None)
    except BulkImportError as refused:
        log.info("dashboard.redeliver.refused", delivery_id=delivery_id, reason=str(refused))
        return back_with("/webhooks", who, "problem", str(refused))
    log.info("dashboard.redeliver", delivery_id=delivery_id)
    return back_with("/webhooks", who, "notice", message)


ROUTES = [
    Route("/webhooks", webhooks_page, methods=["GET"]),
    Route("/webhooks/deliveries/{delivery_id:int}/redeliver", redeliver_action, methods=["POST"]),
]
