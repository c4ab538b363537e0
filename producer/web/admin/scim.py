"""The admin's identity provider page (``/admin/scim``): the SCIM base URL and the tenant's SCIM tokens.

A new token is shown once, on the answer to the form that made it (as
``token create --tenant T --scim`` prints it once); only its hash is kept.
The page lists the tenant's live SCIM tokens by label and date, and revokes
one at once (``POST /admin/scim/tokens/ID/revoke``), as ``bulk-import token
revoke ID`` does: an admin in a browser has no command line.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.tenants import tenant_timezone
from producer.web.admin import session
from producer.web.context import pool_of
from producer.web.pages import page
from producer.web.tokens import create_token, revoke_scim_token, scim_tokens

log = structlog.get_logger(__name__)

MAX_LABEL = 100


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


async def _page(request: Request, who: session.Admin, status: int = 200, **shown: Any) -> Response:
    pool = pool_of(request)
    return page(
        "admin/scim.html",
        status,
        who=who,
        base_url=_base_url(request),
        tokens=await scim_tokens(pool, who.tenant),
        timezone=await tenant_timezone(pool, who.tenant),
        **{"token": None, **shown},
    )


async def scim_page(request: Request) -> Response:
    """What to give the identity provider, and the SCIM tokens it may be using."""
    who = await session.admin(request)
    revoked = request.query_params.get("revoked", "")
    notice = None
    if revoked.isdigit():
        notice = f"SCIM token {revoked} is revoked: requests made with it are refused from now on."
    return await _page(request, who, notice=notice)


async def make_scim_token(request: Request) -> Response:
    """A new SCIM token of the tenant, shown on this answer only."""
    who, form = await session.admin_post(request)
    label = (form.get("label") or "").strip()[:MAX_LABEL] or "identity provider"
    async with pool_of(request).acquire() as conn:
        made = await create_token(conn, who.tenant, label, scim=True)
    log.info("admin.scim_token_created", tenant=who.tenant, token_id=made.id, label=label)
    return await _page(request, who, token=made)


async def revoke_token(request: Request) -> Response:
    """Revoke one of the tenant's SCIM tokens; another tenant's, or one already revoked, is not found."""
    who, _ = await session.admin_post(request)
    token_id = int(request.path_params["token_id"])
    label = await revoke_scim_token(pool_of(request), who.tenant, token_id)
    if label is None:
        problem = f"There is no live SCIM token {token_id} here: it may have been revoked already."
        return await _page(request, who, 404, problem=problem)
    log.info("admin.scim_token_revoked", tenant=who.tenant, token_id=token_id, label=label)
    return RedirectResponse(f"/admin/scim?revoked={token_id}", status_code=303)
