"""Who may use the tenant admins' pages (``/admin``): a tenant's admin, by token.

An admin signs in once at ``/admin/login`` with an admin token (``bulk-import
token create --tenant T --admin``); the answer sets it in a cookie with the
dashboard's protections (:mod:`producer.web.operators`: ``HttpOnly``,
``SameSite=Strict``, ``Secure`` over HTTPS, a CSRF token on every form, POSTs
from another origin refused). Everything the pages show or change belongs to
the token's tenant: another tenant's import or upload is "not found", exactly
like one that does not exist.

An operator's token signs in too, but acts for no tenant until the operator
chooses one (``/admin/tenant``), which is kept in a second cookie and shown on
every page. A plain service token is for programs and is refused here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from core.errors import BulkImportError
from core.tenants import find_tenant
from producer.web.context import pool_of
from producer.web.errors import WebError
from producer.web.operators import NotAnOperator, check_origin, csrf_token, read_form
from producer.web.tokens import Principal, check_tenant_id, verify_token

COOKIE = "bulk_import_admin"
TENANT_COOKIE = "bulk_import_admin_tenant"
COOKIE_MAX_AGE_S = 12 * 3600


class NotSignedIn(WebError):
    """The request has no admin credentials (or not for this); ``status`` says which answer fits."""


class NoTenantChosen(BulkImportError):
    """An operator has not yet chosen the tenant to act for."""


@dataclass(frozen=True)
class Admin:
    """A signed-in browser: the token's principal and the tenant it acts for."""

    principal: Principal
    secret: str
    tenant: str

    @property
    def csrf(self) -> str:
        """The CSRF token of this session's forms."""
        return csrf_token(self.secret)

    @property
    def is_operator(self) -> bool:
        return self.principal.is_operator

    @property
    def label(self) -> str:
        """Who this is, as the pages and the history name them."""
        return self.principal.label or f"token {self.principal.token_id}"


async def check_admin_token(request: Request, secret: str) -> Principal:
    """The principal of an admin's or an operator's token; NotSignedIn for anything else."""
    principal = await verify_token(pool_of(request), secret)
    if principal is None:
        raise NotSignedIn(401, "That token is not valid, or it was revoked. Ask for a new admin token.")
    if not principal.is_operator and not principal.admin:
        raise NotSignedIn(
            403,
            f"This is a service token of {principal.tenant!r}, for programs. Sign in with an admin token"
            f" (`bulk-import token create --tenant {principal.tenant} --admin`).",
        )
    return principal


async def signed_in(request: Request) -> tuple[Principal, str]:
    """The principal and token of the session's cookie (no tenant needed yet)."""
    secret = request.cookies.get(COOKIE, "")
    if not secret:
        raise NotSignedIn(401, "Sign in with your admin token.")
    return await check_admin_token(request, secret), secret


async def admin(request: Request) -> Admin:
    """The admin behind a page, with the tenant it acts for."""
    principal, secret = await signed_in(request)
    if principal.tenant is not None:
        return Admin(principal, secret, principal.tenant)
    chosen = request.cookies.get(TENANT_COOKIE, "")
    if not chosen or not await tenant_exists(request, chosen):
        raise NoTenantChosen()
    return Admin(principal, secret, chosen)


async def tenant_exists(request: Request, tenant: str) -> bool:
    """Whether ``tenant`` is a tenant id that exists."""
    try:
        check_tenant_id(tenant)
    except BulkImportError:
        return False
    return await find_tenant(pool_of(request), tenant) is not None


def check_origin_only(request: Request) -> None:
    """Refuse a POST whose Origin names another site (the sign-in form has no session yet)."""
    try:
        check_origin(request)
    except NotAnOperator:
        raise NotSignedIn(403, "This form was sent from another site, so it was ignored.") from None


def check_csrf(request: Request, secret: str, sent: str) -> None:
    """Refuse a POST from another origin, or without this session's CSRF token."""
    check_origin_only(request)
    if not hmac.compare_digest(sent, csrf_token(secret)):
        raise NotSignedIn(403, "This page was open too long, or in another session: reload it and try again.")


async def admin_post(request: Request) -> tuple[Admin, dict[str, str]]:
    """An admin's small form POST, CSRF-checked."""
    who = await admin(request)
    try:
        form = await read_form(request)
    except NotAnOperator as refused:
        raise NotSignedIn(refused.status, "This form is too large to be one of ours.") from None
    check_csrf(request, who.secret, form.get("csrf", ""))
    return who, form
