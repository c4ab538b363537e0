"""Signing in and out of the admins' pages, and an operator's choice of tenant."""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from producer.queries import QUERIES
from producer.web.admin import session
from producer.web.admin.session import COOKIE, COOKIE_MAX_AGE_S, TENANT_COOKIE, NoTenantChosen, NotSignedIn
from producer.web.context import pool_of
from producer.web.operators import csrf_token, read_form
from producer.web.pages import page

ADMIN_TENANTS = QUERIES["admin_tenants"]

log = structlog.get_logger(__name__)
TENANTS_LISTED = 500


def safe_next(target: str | None, default: str = "/admin") -> str:
    """A path on this site under /admin to go back to; anything else goes to ``default``."""
    if not target or not target.startswith("/admin") or target.startswith("//"):
        return default
    return target


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/admin",
    )


async def login_page(request: Request) -> Response:
    return page("admin/login.html", next=safe_next(request.query_params.get("next")), problem=None)


async def login(request: Request) -> Response:
    session.check_origin_only(request)
    form = await read_form(request)
    secret = form.get("token", "").strip()
    target = safe_next(form.get("next"))
    try:
        principal = await session.check_admin_token(request, secret)
    except NotSignedIn as refused:
        return page("admin/login.html", refused.status, next=target, problem=refused.message)
    response = RedirectResponse(target if principal.tenant else "/admin/tenant", status_code=303)
    _set_cookie(request, response, COOKIE, secret)
    response.delete_cookie(TENANT_COOKIE, path="/admin")
    log.info("admin.login", token=principal.token_id, tenant=principal.tenant)
    return response


async def logout(request: Request) -> Response:
    _, secret = await session.signed_in(request)
    form = await read_form(request)
    session.check_csrf(request, secret, form.get("csrf", ""))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin", httponly=True, samesite="strict")
    response.delete_cookie(TENANT_COOKIE, path="/admin", httponly=True, samesite="strict")
    return response


async def tenant_page(request: Request, problem: str | None = None, status: int = 200) -> Response:
    """An operator chooses the tenant to act for (an admin is sent to their own)."""
    principal, secret = await session.signed_in(request)
    if principal.tenant is not None:
        return RedirectResponse("/admin", status_code=303)
    tenants = await pool_of(request).fetch(ADMIN_TENANTS, TENANTS_LISTED)
    return page(
        "admin/tenant.html",
        status,
        csrf=csrf_token(secret),
        tenants=tenants,
        current=request.cookies.get(TENANT_COOKIE),
        operator=True,
        problem=problem,
    )


async def choose_tenant(request: Request) -> Response:
    principal, secret = await session.signed_in(request)
    form = await read_form(request)
    session.check_csrf(request, secret, form.get("csrf", ""))
    if principal.tenant is not None:
        return RedirectResponse("/admin", status_code=303)
    tenant = form.get("tenant", "").strip()
    if not await session.tenant_exists(request, tenant):
        return await tenant_page(request, f"There is no tenant {tenant!r}: choose one from the list.", 400)
    response = RedirectResponse("/admin", status_code=303)
    _set_cookie(request, response, TENANT_COOKIE, tenant)
    log.info("admin.tenant_chosen", token=principal.token_id, tenant=tenant)
    return response


async def on_not_signed_in(request: Request, exc: Exception) -> Response:
    """Browsers without a session go to the sign-in form; others see why they were refused."""
    assert isinstance(exc, NotSignedIn)
    if exc.status == 401 and request.method == "GET":
        return RedirectResponse("/admin/login?" + urlencode({"next": request.url.path}), status_code=303)
    return page("admin/login.html", exc.status, next="/admin", problem=exc.message)


async def on_no_tenant(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NoTenantChosen)
    return RedirectResponse("/admin/tenant", status_code=303)
