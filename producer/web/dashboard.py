"""The operators' dashboard: the root page ``/``, server-rendered (Jinja2).

Queues (ready, in progress, delayed, dead-lettered), the broker processes
alive, every tenant's scheduled sources with their last run, every tenant's
imports with progress, rate and ETA; an import's page
with its rejected rows; and the actions: retry a queue's dead letters, cancel,
resume, approve a blocked sweep, send pending invites. The actions call
:mod:`producer.control` (and :mod:`core.queues` for dead letters), as the
command line does. A little JavaScript (``static/dashboard.js``) refreshes the
figures from the JSON routes every 2 seconds. Who may see it:
:mod:`producer.web.operators`.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import quote, urlencode

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from core.errors import BulkImportError, ImportNotFound
from core.imports import tenant_of_import
from core.queues import check_queue
from core.sources.store import list_sources
from producer.control import (
    cancel_import,
    resume_import,
    retry_failed_invites,
    send_pending_invites,
    undo_import,
)
from producer.queries import QUERIES
from producer.web import operators
from producer.web.context import pool_of, settings_of
from producer.web.metrics import metrics
from producer.web.offload import in_own_loop
from producer.web.operators import COOKIE, COOKIE_MAX_AGE_S, NotAnOperator, Operator
from producer.web.overview import RECENT_IMPORTS, import_detail, overview
from producer.web.pages import page

WEBHOOK_DELIVERY_COUNTS = QUERIES["webhook_delivery_counts"]
DASHBOARD_FAILED_ROWS = QUERIES["dashboard_failed_rows"]

log = structlog.get_logger(__name__)

FAILED_ROWS_SHOWN = 200
IMPORT_ACTIONS = ("cancel", "resume", "approve", "send-invites", "retry-invites", "undo")


def flash(request: Request, who: Operator) -> dict[str, Any]:
    """The banner an action redirected with, if this session signed it (no spoofed links)."""
    kind = "notice" if "notice" in request.query_params else "problem"
    text = request.query_params.get(kind)
    if text is None or not hmac.compare_digest(request.query_params.get("sig", ""), who.sign(kind + text)):
        return {}
    return {kind: text}


# --- pages ----------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return page("login.html", next=request.query_params.get("next", "/"), problem=None)


async def login(request: Request) -> Response:
    operators.check_origin(request)
    form = await operators.read_form(request)
    secret = form.get("token", "").strip()
    target = form.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"  # never redirect off this site
    try:
        await operators.check_operator_token(request, secret)
    except NotAnOperator as refused:
        return page("login.html", refused.status, next=target, problem=refused.message)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    log.info("dashboard.login")
    return response


async def logout(request: Request) -> Response:
    await operators.operator_post(request)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


async def home(request: Request) -> Response:
    who = await operators.operator(request)
    data = await overview(request)
    hooks = await pool_of(request).fetchrow(WEBHOOK_DELIVERY_COUNTS)
    return page(
        "dashboard.html",
        csrf=who.csrf_token,
        data=data,
        hooks=dict(hooks),
        sources=await list_sources(pool_of(request), None),
        by_cookie=who.by_cookie,
        recent=RECENT_IMPORTS,
        **flash(request, who),
    )


async def home_json(request: Request) -> Response:
    await operators.operator(request)
    return JSONResponse(await overview(request))


async def import_page(request: Request) -> Response:
    who = await operators.operator(request)
    import_id = request.path_params["import_id"]
    try:
        detail = await import_detail(request, import_id)
    except ImportNotFound as missing:
        return page("missing.html", 404, message=str(missing), by_cookie=who.by_cookie, csrf=who.csrf_token)
    failed = await pool_of(request).fetch(DASHBOARD_FAILED_ROWS, import_id, FAILED_ROWS_SHOWN)
    return page(
        "import.html",
        csrf=who.csrf_token,
        by_cookie=who.by_cookie,
        imp=detail,
        failed_rows=failed,
        failed_shown=FAILED_ROWS_SHOWN,
        **flash(request, who),
    )


async def import_json(request: Request) -> Response:
    await operators.operator(request)
    try:
        return JSONResponse(await import_detail(request, request.path_params["import_id"]))
    except ImportNotFound as missing:
        return JSONResponse({"error": str(missing)}, status_code=404)


# --- actions --------------------------------------------------------------------------


def back_with(path: str, who: Operator, kind: str, text: str) -> RedirectResponse:
    """Back to ``path`` with a banner; signed, so a crafted link cannot show one."""
    query = urlencode({kind: text, "sig": who.sign(kind + text)}, quote_via=quote)
    return RedirectResponse(f"{path}?{query}", status_code=303)


async def import_action(request: Request) -> Response:
    """cancel | resume | approve | send-invites | retry-invites, from the import's page."""
    who, _ = await operators.operator_post(request)
    import_id, action = request.path_params["import_id"], request.path_params["action"]
    if action not in IMPORT_ACTIONS:
        return JSONResponse({"error": f"no action {action!r}"}, status_code=404)
    settings, page = settings_of(request), f"/imports/{import_id}"
    try:
        if action == "cancel":
            message = await in_own_loop(cancel_import(settings, import_id))
        elif action == "resume":
            message = await in_own_loop(resume_import(settings, import_id))
        elif action == "approve":
            message = await in_own_loop(resume_import(settings, import_id, allow_mass_deactivation=True))
        elif action == "undo":
            message = (await in_own_loop(undo_import(settings, import_id)))[2]
        else:
            tenant = await tenant_of_import(pool_of(request), import_id)
            if tenant is None:
                raise ImportNotFound(f"no import {import_id}")
            if action == "retry-invites":
                message = await in_own_loop(retry_failed_invites(settings, tenant, import_id))
            else:
                message = await in_own_loop(send_pending_invites(settings, tenant, import_id, None))
    except BulkImportError as refused:
        log.info("dashboard.action.refused", action=action, import_id=import_id, reason=str(refused))
        return back_with(page, who, "problem", str(refused))
    log.info("dashboard.action", action=action, import_id=import_id, result=message)
    return back_with(page, who, "notice", message)


async def retry_queue(request: Request) -> Response:
    """Put a queue's dead-lettered messages back on it."""
    who, _ = await operators.operator_post(request)
    queue = request.path_params["queue"]
    try:
        moved = await request.app.state.broker_reader.retry_dead_letters(check_queue(queue))
    except ValueError as unknown:
        return back_with("/", who, "problem", str(unknown))
    log.info("dashboard.dead_letters.retried", queue=queue, messages=moved)
    return back_with("/", who, "notice", f"{moved} dead-lettered messages of queue {queue} are back on it")


async def on_not_an_operator(request: Request, exc: Exception) -> Response:
    """Browsers without credentials go to the login form; programs get JSON."""
    assert isinstance(exc, NotAnOperator)
    wants_html = "text/html" in request.headers.get("accept", "") and not request.url.path.endswith(".json")
    if exc.status == 401 and wants_html and request.method == "GET":
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
    if wants_html:
        return page("login.html", exc.status, next="/", problem=exc.message)
    return JSONResponse({"error": exc.message}, status_code=exc.status)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/dashboard.json", home_json, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/imports/{import_id:int}", import_page, methods=["GET"]),
    Route("/imports/{import_id:int}.json", import_json, methods=["GET"]),
    Route("/imports/{import_id:int}/{action:str}", import_action, methods=["POST"]),
    Route("/queues/{queue:str}/retry", retry_queue, methods=["POST"]),
    Route("/metrics", metrics, methods=["GET"]),
    Mount("/static", StaticFiles(packages=[("producer.web", "static")]), name="static"),
]
