"""The tenant admins' pages (``/admin``): an import from "I have a spreadsheet" to "my people are in".

Modules:

- ``session``: who is signed in (an admin token, or an operator who chose a
  tenant), the cookie and CSRF checks; ``login``: the sign-in, sign-out and
  tenant choice pages.
- ``drafts``: an uploaded file waiting, on disk, for its import.
- ``flow``: the steps of an import (upload, columns, review, settings, start).
- ``imports``: the history, an import's progress and result, its errors file
  and actions.
- ``sources``: the automatic imports (scheduled sources): add one (its SFTP
  server's key shown and confirmed first), test, run now, pause, resume,
  remove, and its last runs.
- ``scim``: the identity provider page: the SCIM base URL, the tenant's SCIM tokens
  (revoked there), a new one on demand.

Every page is server-rendered (``templates/admin/``); ``static/admin.js``
adds the file drop and the live progress.
"""

from starlette.routing import Route

from producer.web.admin import flow, imports, login, scim, sources
from producer.web.admin.drafts import DraftNotFound
from producer.web.admin.login import on_no_tenant, on_not_signed_in
from producer.web.admin.session import NoTenantChosen, NotSignedIn

_UPLOAD = "/admin/uploads/{draft:str}"
_IMPORT = "/admin/imports/{import_id:int}"
_SOURCE = "/admin/sources/{source_id:int}"

ROUTES = [
    Route("/admin", flow.start_page, methods=["GET"]),
    Route("/admin/login", login.login_page, methods=["GET"]),
    Route("/admin/login", login.login, methods=["POST"]),
    Route("/admin/logout", login.logout, methods=["POST"]),
    Route("/admin/tenant", login.tenant_page, methods=["GET"]),
    Route("/admin/tenant", login.choose_tenant, methods=["POST"]),
    Route("/admin/template.csv", flow.template_csv, methods=["GET"]),
    Route("/admin/uploads", flow.upload, methods=["POST"]),
    Route(_UPLOAD + "/columns", flow.columns_page, methods=["GET"]),
    Route(_UPLOAD + "/columns", flow.choose_columns, methods=["POST"]),
    Route(_UPLOAD + "/review", flow.review_page, methods=["GET"]),
    Route(_UPLOAD + "/settings", flow.settings_page, methods=["GET"]),
    Route(_UPLOAD + "/start", flow.start_import, methods=["POST"]),
    Route("/admin/imports", imports.history, methods=["GET"]),
    Route(_IMPORT, imports.import_page, methods=["GET"]),
    Route(_IMPORT + ".json", imports.import_json, methods=["GET"]),
    Route(_IMPORT + "/errors.csv", imports.errors_csv, methods=["GET"]),
    Route(_IMPORT + "/undo", imports.undo_preview, methods=["GET"]),
    Route(_IMPORT + "/{action:str}", imports.import_action, methods=["POST"]),
    Route("/admin/sources", sources.sources_page, methods=["GET"]),
    Route("/admin/sources", sources.add_source, methods=["POST"]),
    Route("/admin/sources/check", sources.check_server, methods=["POST"]),
    Route("/admin/sources/runs/{run_id:int}/approve", sources.approve_run, methods=["POST"]),
    Route("/admin/scim", scim.scim_page, methods=["GET"]),
    Route("/admin/scim", scim.make_scim_token, methods=["POST"]),
    Route("/admin/scim/tokens/{token_id:int}/revoke", scim.revoke_token, methods=["POST"]),
    Route(_SOURCE, sources.source_page, methods=["GET"]),
    Route(_SOURCE + "/{action:str}", sources.source_action, methods=["POST"]),
]

EXCEPTION_HANDLERS = {
    NotSignedIn: on_not_signed_in,
    NoTenantChosen: on_no_tenant,
    DraftNotFound: flow.on_draft_not_found,
}

__all__ = ["EXCEPTION_HANDLERS", "ROUTES"]
