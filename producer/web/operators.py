"""Who may use the dashboard and ``/metrics``: operators, by token.

A program sends its operator token as ``Authorization: Bearer <token>``. A
browser logs in once at ``/login`` with the same token; the answer sets it in
a cookie that scripts cannot read (``HttpOnly``), that other sites' pages never
send (``SameSite=Strict``), and that only travels over HTTPS when the page was
served over HTTPS (``Secure``). The cookie holds the token itself, so revoking
the token (``bulk-import token revoke ID``) logs the browser out at once.

A cookie is sent by the browser on its own, so every POST that relies on it
must also carry the session's CSRF token (a hidden form field): an HMAC of the
operator token, which a page of another site cannot compute or read. A POST
whose ``Origin`` names another host is refused as well. Requests with a
bearer header need neither: a browser never adds that header by itself.
A service (tenant) token is refused everywhere here.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

from producer.web.context import pool_of
from producer.web.errors import WebError
from producer.web.tokens import Principal, verify_token

COOKIE = "bulk_import_operator"
COOKIE_MAX_AGE_S = 12 * 3600
_MAX_FORM_BYTES = 16 * 1024


class NotAnOperator(WebError):
    """The request has no operator credentials; ``status`` says which answer fits."""


@dataclass(frozen=True)
class Operator:
    """An operator's request: who, and whether a cookie (not a header) vouched for it."""

    principal: Principal
    secret: str
    by_cookie: bool

    @property
    def csrf_token(self) -> str:
        """The CSRF token of this session: an HMAC of the operator token."""
        return csrf_token(self.secret)

    def sign(self, text: str) -> str:
        """An HMAC of ``text`` under this operator's token (for the banners of redirects)."""
        return hmac.new(self.secret.encode(), b"banner:" + text.encode(), hashlib.sha256).hexdigest()


def csrf_token(secret: str) -> str:
    """The CSRF token that goes with an operator token."""
    return hmac.new(secret.encode(), b"bulk-import dashboard csrf", hashlib.sha256).hexdigest()


async def check_operator_token(request: Request, secret: str) -> Principal:
    """The principal of an operator token; NotAnOperator for anything else."""
    principal = await verify_token(pool_of(request), secret)
    if principal is None:
        raise NotAnOperator(401, "invalid or revoked token")
    if not principal.is_operator:
        raise NotAnOperator(
            403,
            f"this is a service token of tenant {principal.tenant!r}: the dashboard is for operators"
            " (`bulk-import token create --operator`)",
        )
    return principal


async def operator(request: Request) -> Operator:
    """The operator behind a request, from its bearer header or its login cookie."""
    header = request.headers.get("authorization", "").strip()
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAnOperator(401, "the Authorization header must read `Bearer <token>`")
        return Operator(await check_operator_token(request, secret.strip()), secret.strip(), by_cookie=False)
    secret = request.cookies.get(COOKIE, "")
    if not secret:
        raise NotAnOperator(401, "log in with an operator token")
    return Operator(await check_operator_token(request, secret), secret, by_cookie=True)


def check_origin(request: Request) -> None:
    """Refuse a POST whose Origin header names another host."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise NotAnOperator(403, "this form was posted from another site")


async def read_form(request: Request) -> dict[str, str]:
    """A small URL-encoded form body (the dashboard's forms), first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise NotAnOperator(400, "the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


async def operator_post(request: Request) -> tuple[Operator, dict[str, str]]:
    """An operator's POST with its form; the CSRF token is checked when a cookie vouched."""
    who = await operator(request)
    form = await read_form(request)
    if who.by_cookie:
        check_origin(request)
        if not hmac.compare_digest(form.get("csrf", ""), who.csrf_token):
            raise NotAnOperator(403, "the form's CSRF token is missing or stale: reload the page and retry")
    return who, form
