"""The admin's imports: the history, one import's progress and result, its errors file, its actions.

Only the signed-in tenant's imports exist here: another tenant's id is "not
found". The figures are the operators' (:func:`producer.web.overview.import_detail`,
the status JSON plus progress, rate and ETA); the actions are the command
line's (:mod:`producer.control`).
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.errors import BulkImportError, ImportNotFound
from core.imports import tenant_of_import
from core.sources.runs import stopped_runs
from core.tenants import tenant_timezone
from producer.control import cancel_import, preview_undo, resume_import, send_pending_invites, undo_import
from producer.queries import QUERIES
from producer.web.admin import session
from producer.web.admin.session import Admin
from producer.web.context import pool_of, settings_of
from producer.web.downloads import failed_rows_csv
from producer.web.offload import in_own_loop
from producer.web.overview import import_detail
from producer.web.pages import page

ADMIN_LIST_IMPORTS = QUERIES["admin_list_imports"]
DASHBOARD_FAILED_ROWS = QUERIES["dashboard_failed_rows"]
ADMIN_IMPORT_STARTER = QUERIES["admin_import_starter"]

log = structlog.get_logger(__name__)

HISTORY_PAGE = 25
STOPPED_SHOWN = 5
FAILED_ROWS_SHOWN = 50
_MAX_ID = 2**63 - 1
_ACTIONS = ("cancel", "approve", "send-invites", "resend-invites", "undo")
_NOTICES = {
    "cancel": "The import is cancelled.",
    "approve": "Approved: the people not in the file are being deactivated.",
    "send-invites": "The pending invitations are on their way.",
    "resend-invites": "The invitations that went to an old address are on their way to the new one.",
    "undo": "This is the undo of your import: it puts people back as they were before it.",
}


async def _owned(request: Request, who: Admin) -> int:
    """The path's import id if it is this tenant's; ImportNotFound otherwise (as for a missing one)."""
    import_id: int = request.path_params["import_id"]
    tenant = await tenant_of_import(pool_of(request), import_id) if import_id <= _MAX_ID else None
    if tenant != who.tenant:
        raise ImportNotFound(f"There is no import {import_id} here.")
    return import_id


def _missing(who: Admin, message: str) -> Response:
    return page("admin/missing.html", 404, who=who, message=message)


async def history(request: Request) -> Response:
    who = await session.admin(request)
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and int(raw) <= _MAX_ID else None
    rows = await pool_of(request).fetch(ADMIN_LIST_IMPORTS, who.tenant, HISTORY_PAGE, before)
    timezone = await tenant_timezone(pool_of(request), who.tenant)
    following = rows[-1]["id"] if len(rows) == HISTORY_PAGE else None
    # The sources' runs that stopped before any import: shown above the first page.
    stopped = await stopped_runs(pool_of(request), who.tenant, STOPPED_SHOWN) if before is None else []
    return page(
        "admin/history.html", who=who, imports=rows, following=following, timezone=timezone, stopped=stopped
    )


async def import_page(request: Request, problem: str | None = None) -> Response:
    who = await session.admin(request)
    try:
        import_id = await _owned(request, who)
    except ImportNotFound as missing:
        return _missing(who, str(missing))
    pool = pool_of(request)
    detail = await import_detail(request, import_id)
    failed = await pool.fetch(DASHBOARD_FAILED_ROWS, import_id, FAILED_ROWS_SHOWN)
    starter = await pool.fetchrow(ADMIN_IMPORT_STARTER, import_id)
    timezone = await tenant_timezone(pool, who.tenant)
    return page(
        "admin/import.html",
        409 if problem else 200,
        who=who,
        imp=detail,
        failed_rows=failed,
        failed_shown=FAILED_ROWS_SHOWN,
        started_by=f"the automatic import {detail['source']['name']!r}"
        if detail["source"]
        else starter["token_label"] or ("the command line" if starter["token_id"] is None else "a token"),
        timezone=timezone,
        # Only our own words: a crafted link cannot put text on the page.
        notice=_NOTICES.get(request.query_params.get("done", "")) if problem is None else None,
        problem=problem,
    )


async def import_json(request: Request) -> Response:
    who = await session.admin(request)
    try:
        import_id = await _owned(request, who)
    except ImportNotFound as missing:
        return JSONResponse({"error": str(missing)}, status_code=404)
    return JSONResponse(await import_detail(request, import_id))


async def errors_csv(request: Request) -> Response:
    """The rejected and failed rows: the file's own columns, a Row and a Reason column, ready to fix."""
    who = await session.admin(request)
    try:
        import_id = await _owned(request, who)
    except ImportNotFound as missing:
        return _missing(who, str(missing))
    return await failed_rows_csv(pool_of(request), import_id, f"import-{import_id}-rows-to-fix.csv")


async def import_action(request: Request) -> Response:
    """cancel | approve | send-invites | resend-invites | undo, from the import's page (undo: then the
    undo's page). resend-invites: the tenant's invitations sent to an address its person no longer has."""
    who, _ = await session.admin_post(request)
    action = request.path_params["action"]
    try:
        import_id = await _owned(request, who)
    except ImportNotFound as missing:
        return _missing(who, str(missing))
    if action not in _ACTIONS:
        return _missing(who, f"There is no action {action!r}.")
    settings = settings_of(request)
    try:
        if action == "undo":
            undo_id, _, message = await in_own_loop(undo_import(settings, import_id, tenant=who.tenant))
            log.info("admin.action", tenant=who.tenant, import_id=import_id, action=action, result=message)
            return RedirectResponse(f"/admin/imports/{undo_id}?done=undo", status_code=303)
        if action == "cancel":
            message = await in_own_loop(cancel_import(settings, import_id))
        elif action == "approve":
            message = await in_own_loop(resume_import(settings, import_id, allow_mass_deactivation=True))
        elif action == "resend-invites":
            resend = send_pending_invites(settings, who.tenant, None, None, resend_renamed=True)
            message = await in_own_loop(resend)
        else:
            message = await in_own_loop(send_pending_invites(settings, who.tenant, import_id, None))
    except BulkImportError as refused:
        log.info("admin.action.refused", tenant=who.tenant, import_id=import_id, action=action)
        return await import_page(request, f"That could not be done: {refused}.")
    log.info("admin.action", tenant=who.tenant, import_id=import_id, action=action, result=message)
    return RedirectResponse(f"/admin/imports/{import_id}?done={action}", status_code=303)


async def undo_preview(request: Request) -> Response:
    """What undoing the import would do, read-only, with the button that does it."""
    who = await session.admin(request)
    try:
        import_id = await _owned(request, who)
        preview = await in_own_loop(preview_undo(settings_of(request), import_id, who.tenant))
    except ImportNotFound as missing:
        return _missing(who, str(missing))
    except BulkImportError as refused:
        return await import_page(request, f"That cannot be undone: {refused}.")
    return page("admin/undo.html", who=who, preview=preview, shown=FAILED_ROWS_SHOWN)
