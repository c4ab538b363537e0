"""The HTTP API's scheduled sources (Starlette routes, mounted with ``producer.web.api``'s).

- ``POST /api/sources`` ``{"name", "url", "password"?, "private_key"?, "header"?,
  "host_key"?, "accept_host_key"?, "schedule"?, "options"?}``: save a source
  (``201``); an SFTP server's key not confirmed: ``409`` with ``host_key``,
  the fingerprint to confirm, and nothing saved. ``GET /api/sources``.
- ``GET /api/sources/{id}`` (with its latest ``runs``), ``DELETE``;
  ``POST /api/sources/{id}/test`` (``{"ok", "message"}`` or ``{"ok": false,
  "error"}``), ``/run`` (``202`` the run), ``/pause``, ``/resume``.
- ``GET /api/sources/runs/{id}``; ``POST /api/sources/runs/{id}/approve``: import
  the file the sweep guard blocked that run on.

A service token acts for its tenant (another tenant's source is 404); an
operator names one with ``?tenant=`` (by id: any tenant's). Secrets go in and
never come out.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.errors import SourceRefused
from core.intake.options import ImportOptions
from core.sources import runs, store, vault
from core.sources.fetched import FetchFailed
from core.sources.store import HostKeyToConfirm, NewSource
from producer.sources import run_now
from producer.web.api import _MAX_ID, _principal, _tenant
from producer.web.context import pool_of, settings_of
from producer.web.errors import ApiError

log = structlog.get_logger(__name__)

_MAX_BODY = 64 * 1024
_EXAMPLE = '{"name": "Workday", "url": "sftp://hr@sftp.example.com/exports/people-*.csv", "password": "…"}'


async def _scope(request: Request, *, required: bool = False) -> str | None:
    return _tenant(request, await _principal(request), required=required)


async def _body(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > _MAX_BODY:
        raise ApiError(413, f"the body is over {_MAX_BODY} bytes")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, f"the body is not valid JSON: send e.g. {_EXAMPLE}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"the body must be a JSON object, e.g. {_EXAMPLE}")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise ApiError(
            400, f"{name} must be a string" + (f" (it is required: {_EXAMPLE})" if required else "")
        )
    return value


def _new_source(tenant: str, data: dict[str, Any]) -> NewSource:
    header_name = header_value = None
    header = _text(data, "header")
    if header is not None:
        name, colon, value = header.partition(":")
        if not colon:
            raise ApiError(400, "header must read 'Name: value', e.g. 'Authorization: Bearer …'")
        header_name, header_value = name.strip(), value.strip()
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, 'options must be an object, e.g. {"mode": "sync", "invites": "now"}')
    return NewSource(
        tenant=tenant,
        name=_text(data, "name", required=True) or "",
        url=_text(data, "url", required=True) or "",
        secrets=vault.Secrets(
            password=_text(data, "password"),
            private_key=_text(data, "private_key"),
            header_value=header_value,
        ),
        header_name=header_name,
        host_key=_text(data, "host_key"),
        accept_host_key=data.get("accept_host_key") is True,
        schedule=_text(data, "schedule"),
        options=ImportOptions.from_json(options),
    )


def _source_id(request: Request, name: str = "source_id") -> int:
    value: int = request.path_params[name]
    if value > _MAX_ID:
        raise ApiError(404, f"no source {value}")
    return value


async def add_source(request: Request) -> Response:
    tenant = await _scope(request, required=True)
    assert tenant is not None
    new = _new_source(tenant, await _body(request))
    async with pool_of(request).acquire() as conn:
        try:
            shown = await store.add_source(conn, new, settings_of(request), datetime.now(UTC))
        except HostKeyToConfirm as unconfirmed:
            return JSONResponse(
                {"error": str(unconfirmed), "host_key": unconfirmed.fingerprint}, status_code=409
            )
    log.info("api.source.added", tenant=tenant, source_id=shown["id"])
    return JSONResponse(shown, status_code=201)


async def list_sources(request: Request) -> Response:
    tenant = await _scope(request)
    return JSONResponse({"sources": await store.list_sources(pool_of(request), tenant)})


async def get_source(request: Request) -> Response:
    tenant, source_id = await _scope(request), _source_id(request)
    shown = await store.get_source(pool_of(request), tenant, source_id)
    shown["runs"] = await runs.runs_of_source(pool_of(request), shown["tenant"], source_id)
    return JSONResponse(shown)


async def _owner(request: Request) -> tuple[str, int]:
    tenant, source_id = await _scope(request), _source_id(request)
    return (await store.get_source(pool_of(request), tenant, source_id))["tenant"], source_id


async def remove_source(request: Request) -> Response:
    tenant, source_id = await _owner(request)
    async with pool_of(request).acquire() as conn:
        await store.remove_source(conn, tenant, source_id, datetime.now(UTC))
    return JSONResponse({"id": source_id, "removed": True})


async def change_source(request: Request) -> Response:
    if request.path_params["action"] not in ("pause", "resume"):
        raise ApiError(404, f"no action {request.path_params['action']!r}: pause, resume, test or run")
    tenant, source_id = await _owner(request)
    change = store.pause_source if request.path_params["action"] == "pause" else store.resume_source
    async with pool_of(request).acquire() as conn:
        await change(conn, tenant, source_id, datetime.now(UTC))
        return JSONResponse(await store.get_source(conn, tenant, source_id))


async def test_source(request: Request) -> Response:
    tenant, source_id = await _owner(request)
    async with pool_of(request).acquire() as conn:
        try:
            message = await store.test_source(conn, tenant, source_id, settings_of(request))
        except (FetchFailed, SourceRefused) as failed:
            return JSONResponse({"id": source_id, "ok": False, "error": str(failed)})
    return JSONResponse({"id": source_id, "ok": True, "message": message})


async def run_source(request: Request) -> Response:
    tenant, source_id = await _owner(request)
    run, new = await run_now(settings_of(request), tenant, source_id)
    return JSONResponse(run, status_code=202 if new else 200)


async def get_run(request: Request) -> Response:
    tenant, run_id = await _scope(request), _source_id(request, "run_id")
    return JSONResponse(await runs.get_run(pool_of(request), run_id, tenant))


async def approve_run(request: Request) -> Response:
    tenant, run_id = await _scope(request), _source_id(request, "run_id")
    run, new = await run_now(settings_of(request), tenant, None, approve=run_id)  # 409: nothing to approve
    return JSONResponse(run, status_code=202 if new else 200)


ROUTES = [
    Route("/api/sources", add_source, methods=["POST"]),
    Route("/api/sources", list_sources, methods=["GET"]),
    Route("/api/sources/runs/{run_id:int}", get_run, methods=["GET"]),
    Route("/api/sources/runs/{run_id:int}/approve", approve_run, methods=["POST"]),
    Route("/api/sources/{source_id:int}", get_source, methods=["GET"]),
    Route("/api/sources/{source_id:int}", remove_source, methods=["DELETE"]),
    Route("/api/sources/{source_id:int}/test", test_source, methods=["POST"]),
    Route("/api/sources/{source_id:int}/run", run_source, methods=["POST"]),
    Route("/api/sources/{source_id:int}/{action:str}", change_source, methods=["POST"]),
]
