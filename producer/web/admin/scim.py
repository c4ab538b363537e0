"""The admin's identity provider page (``/admin/scim``): the SCIM base URL, and a SCIM token made on demand.

The token is shown once, on the answer to the form that made it (as ``token
create --tenant T --scim`` prints it once); only its hash is kept. Revoking
stays the command line's (``bulk-import token revoke ID``).
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response

from producer.web.admin import session
from producer.web.context import pool_of
from producer.web.pages import page
from producer.web.tokens import create_token

log = structlog.get_logger(__name__)

MAX_LABEL = 100


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/scim/v2"


async def scim_page(request: Request) -> Response:
    """What to give the identity provider."""
    who = await session.admin(request)
    return page("admin/scim.html", who=who, base_url=_base_url(request), token=None)


async def make_scim_token(request: Request) -> Response:
    """A new SCIM token of the tenant, shown on this answer only."""
    who, form = await session.admin_post(request)
    label = (form.get("label") or "").strip()[:MAX_LABEL] or "identity provider"
    async with pool_of(request).acquire() as conn:
        made = await create_token(conn, who.tenant, label, scim=True)
    log.info("admin.scim_token_created", tenant=who.tenant, token_id=made.id, label=label)
    return page("admin/scim.html", who=who, base_url=_base_url(request), token=made)
