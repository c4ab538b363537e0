"""The HTTP API for other services: review, submit, poll, errors, cancel, undo (Starlette).

Every ``/api`` route but ``/api/openapi.json`` needs ``Authorization: Bearer
<token>`` (:mod:`producer.web.tokens`). A service token acts for its own tenant
only: another tenant's import answers 404, exactly like one that does not
exist. An operator token sees every tenant and names one with ``?tenant=``
where a request needs one (review, submit).

A CSV or workbook body (told apart by its content, not its Content-Type) is
streamed to a temporary file, counted against ``API_MAX_UPLOAD_BYTES`` (413
as soon as it is over), and handed to the producer by path. The review and
the submission validate every row in Python, which is CPU work: they run on
an event loop of their own in a worker thread (with their own connection),
so one large file never stalls the other requests. Everything else uses the
app's asyncpg pool, made at startup.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.db import connection
from core.errors import BulkImportError, ImportNotFound
from core.imports import tenant_of_import
from core.intake.options import ImportOptions, OptionError
from core.intake.review import review_file
from core.intake.review.changes import CHANGES_PAGE
from core.intake.review.review import ROW_DETAILS_CAP
from core.intake.submit import ImportRequest, find_import_by_key, submit_import_async
from core.vocabulary import FILE_MODES
from producer.control import cancel_import, preview_undo, undo_import
from producer.queries import QUERIES
from producer.reports import import_status
from producer.web import downloads
from producer.web.context import pool_of, settings_of
from producer.web.downloads import failed_rows_csv
from producer.web.errors import ApiError
from producer.web.offload import in_own_loop
from producer.web.openapi import OPENAPI
from producer.web.tokens import Principal, check_tenant_id, verify_token
from producer.web.uploads import uploaded_csv

API_LIST_IMPORTS = QUERIES["api_list_imports"]

log = structlog.get_logger(__name__)

_MAX_ID = 2**63 - 1
_MAX_KEY_CHARS = 255
_CHUNK = 64 * 1024
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


# --- helpers -------------------------------------------------------------------


async def _principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "").strip()
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise ApiError(401, "missing token: send `Authorization: Bearer <token>`", challenge)
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(401, "the Authorization header must read `Bearer <token>`", challenge)
    principal = await verify_token(pool_of(request), secret.strip())
    if principal is None:
        raise ApiError(401, "invalid or revoked token", challenge)
    structlog.contextvars.bind_contextvars(token=principal.token_id)
    return principal


def _tenant(request: Request, principal: Principal, *, required: bool) -> str | None:
    """The tenant a request acts for: the token's, or an operator's ``?tenant=``."""
    asked = request.query_params.get("tenant") or None
    if principal.tenant is not None:
        if asked is not None and asked != principal.tenant:
            raise ApiError(403, f"this token acts for tenant {principal.tenant!r} only: leave out ?tenant=")
        return principal.tenant
    if asked is None and required:
        raise ApiError(400, "an operator token must name the tenant: add ?tenant=ID")
    return None if asked is None else check_tenant_id(asked)


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false").lower()
    if value not in _TRUE | _FALSE:
        raise ApiError(400, f"{name} must be true or false, not {value!r}")
    return value in _TRUE


def _number(request: Request, name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


async def _owned_import(request: Request, principal: Principal) -> int:
    """The path's import id, if the token may see it; otherwise ImportNotFound (404)."""
    import_id: int = request.path_params["import_id"]
    tenant = None
    if import_id <= _MAX_ID:
        tenant = await tenant_of_import(pool_of(request), import_id)
    if tenant is None or (principal.tenant is not None and tenant != principal.tenant):
        raise ImportNotFound(f"no import {import_id}")
    structlog.contextvars.bind_contextvars(import_id=import_id)
    return import_id


def _status_url(import_id: int) -> str:
    return f"/api/imports/{import_id}"


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


# --- routes --------------------------------------------------------------------


async def openapi(_request: Request) -> Response:
    return JSONResponse(OPENAPI)


async def template_csv(request: Request) -> Response:
    await _principal(request)
    return downloads.template_csv(example=_flag(request, "example"))


def _options(request: Request, *, mode_required: bool = False) -> ImportOptions:
    """The import's options from the query (``mode``, ``blank_cells``, ``invites``, ``send_at``, ...)."""
    try:
        if mode_required and not request.query_params.get("mode"):
            raise OptionError("mode", f"is missing: choose one of {', '.join(FILE_MODES)}")
        return ImportOptions.from_text(request.query_params)
    except BulkImportError as refused:
        raise ApiError(400, str(refused)) from None


async def review(request: Request) -> Response:
    principal = await _principal(request)
    tenant = _tenant(request, principal, required=True)
    assert tenant is not None
    options = _options(request)
    # One page of the people to update with their changes (a browser shows 50 at a time).
    changes_offset = _number(request, "changes_offset", 0, 0, _MAX_ID)
    changes_limit = _number(request, "changes_limit", CHANGES_PAGE, 0, ROW_DETAILS_CAP)
    settings = settings_of(request)

    async def run(path: str) -> dict[str, Any]:
        async with connection(settings.database_url) as conn:
            with open(path, "rb") as stream:  # a stream: the temporary file's name stays out of the JSON
                return await review_file(
                    conn,
                    stream,
                    tenant,
                    options,
                    changes_offset=changes_offset or 0,
                    changes_limit=CHANGES_PAGE if changes_limit is None else changes_limit,
                    max_share=settings.sweep_max_share,
                )

    async with uploaded_csv(request) as path:
        return JSONResponse(await in_own_loop(run(path)))


async def submit(request: Request) -> Response:
    principal = await _principal(request)
    tenant = _tenant(request, principal, required=True)
    assert tenant is not None
    options = _options(request, mode_required=True)
    key = request.headers.get("idempotency-key") or None
    if key is not None and (len(key) > _MAX_KEY_CHARS or not key.isprintable()):
        raise ApiError(400, f"Idempotency-Key must be at most {_MAX_KEY_CHARS} printable characters")
    settings = settings_of(request)
    job = ImportRequest(tenant=tenant, options=options, idempotency_key=key, token_id=principal.token_id)
    async with uploaded_csv(request) as path:
        existing = None
        if key is not None:
            existing = await find_import_by_key(pool_of(request), tenant, key)
        if existing is None:
            try:
                import_id = await in_own_loop(submit_import_async(path, job, settings))
            except asyncpg.UniqueViolationError:
                # The same key, sent again while the first request was recording its import.
                if key is None:
                    raise
                existing = await find_import_by_key(pool_of(request), tenant, key)
                if existing is None:
                    raise
    if existing is not None:
        log.info("api.import.replayed", tenant=tenant, import_id=existing)
        return JSONResponse({"id": existing, "status_url": _status_url(existing)}, status_code=200)
    log.info("api.import.submitted", tenant=tenant, import_id=import_id)
    body = {"id": import_id, "status_url": _status_url(import_id)}
    return JSONResponse(body, status_code=202, headers={"Location": _status_url(import_id)})


async def list_imports(request: Request) -> Response:
    principal = await _principal(request)
    tenant = _tenant(request, principal, required=False)
    limit = _number(request, "limit", 50, 1, 1000)
    before = _number(request, "before", None, 1, _MAX_ID)
    rows = await pool_of(request).fetch(API_LIST_IMPORTS, tenant, limit, before)
    imports = [
        {
            "id": r["id"],
            "tenant": r["tenant_id"],
            "mode": r["mode"],
            "state": r["state"],
            "invites_option": r["invites"],
            "file": r["filename"],
            "rows": {"total": r["total_rows"], "invalid": r["invalid_rows"]},
            "created_at": _iso(r["created_at"]),
            "started_at": _iso(r["started_at"]),
            "finished_at": _iso(r["finished_at"]),
            "status_url": _status_url(r["id"]),
        }
        for r in rows
    ]
    following = None
    if len(rows) == limit:
        following = f"/api/imports?limit={limit}&before={rows[-1]['id']}"
        if principal.is_operator and tenant is not None:
            following += f"&tenant={tenant}"
    return JSONResponse({"imports": imports, "next": following})


async def get_import(request: Request) -> Response:
    principal = await _principal(request)
    import_id = await _owned_import(request, principal)
    async with pool_of(request).acquire() as conn:
        return JSONResponse(await import_status(conn, import_id, principal.tenant))


async def errors_csv(request: Request) -> Response:
    principal = await _principal(request)
    import_id = await _owned_import(request, principal)
    return await failed_rows_csv(pool_of(request), import_id, f"import-{import_id}-errors.csv")


async def cancel(request: Request) -> Response:
    principal = await _principal(request)
    import_id = await _owned_import(request, principal)
    message = await in_own_loop(cancel_import(settings_of(request), import_id))
    log.info("api.import.cancelled", import_id=import_id, result=message)
    return JSONResponse({"id": import_id, "message": message, "status_url": _status_url(import_id)})


async def undo(request: Request) -> Response:
    """Preview (``dry_run=true``) or start the undo of a finished import."""
    principal = await _principal(request)
    import_id = await _owned_import(request, principal)
    settings = settings_of(request)
    if _flag(request, "dry_run"):
        # Read-only, but it reads every person the import touched: off the app's loop.
        return JSONResponse(await in_own_loop(preview_undo(settings, import_id, principal.tenant)))
    undo_id, created, message = await in_own_loop(
        undo_import(settings, import_id, tenant=principal.tenant, token_id=principal.token_id)
    )
    log.info("api.import.undo", import_id=import_id, undo_id=undo_id, created=created)
    body = {"id": undo_id, "message": message, "status_url": _status_url(undo_id)}
    return JSONResponse(body, status_code=202 if created else 200, headers={"Location": _status_url(undo_id)})


ROUTES = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/template.csv", template_csv, methods=["GET"]),
    Route("/api/imports/review", review, methods=["POST"]),
    Route("/api/imports", submit, methods=["POST"]),
    Route("/api/imports", list_imports, methods=["GET"]),
    Route("/api/imports/{import_id:int}", get_import, methods=["GET"]),
    Route("/api/imports/{import_id:int}/errors.csv", errors_csv, methods=["GET"]),
    Route("/api/imports/{import_id:int}/cancel", cancel, methods=["POST"]),
    Route("/api/imports/{import_id:int}/undo", undo, methods=["POST"]),
]
