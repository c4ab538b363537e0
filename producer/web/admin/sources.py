"""The admin's automatic imports (``/admin/sources``): a tenant's scheduled sources, added and watched.

Adding is two steps, so that the SFTP server's key is shown before anything
is saved ("first use shows the fingerprint to confirm"): the server's
address first, then the page that shows the key the server presents
(``SHA256:…``), asks the admin to confirm it, and takes the rest (the
credentials, the schedule, the import's settings). Saving reads the key
again and pins it only if it is the one confirmed. A source's page tests
the connection, runs it now, pauses, resumes or removes it, and lists its
last runs with their outcome and why; a run the sweep guard blocked can be
approved there. Another tenant's source is "not found". The work is
:mod:`core.sources`'s, as for the command line and the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.errors import BulkImportError, SourceNotFound
from core.intake.options import ImportOptions
from core.sources import runs, store
from core.sources.fetch_sftp import server_host_key
from core.sources.locations import parse_location
from core.sources.store import NewSource
from core.sources.vault import Secrets
from core.tenants import tenant_timezone
from core.vocabulary import (
    DEFAULT_BLANK_CELLS,
    DEFAULT_MODE,
    FILE_MODES,
    BlankCells,
    InviteOption,
    Mode,
    SourceKind,
)
from producer.sources import run_now
from producer.web.admin import session
from producer.web.admin.flow import BLANK_LABELS, INVITE_LABELS, MODE_LABELS
from producer.web.admin.session import Admin
from producer.web.context import pool_of, settings_of
from producer.web.pages import page

log = structlog.get_logger(__name__)

_MAX_ID = 2**63 - 1
DEFAULT_SCHEDULE = "0 3 * * *"
SOURCE_INVITES = {k: v for k, v in INVITE_LABELS.items() if k != InviteOption.AT}
_ACTIONS = ("test", "run", "pause", "resume", "remove")
_NOTICES = {
    "added": "The automatic import is saved. Test the connection, or run it now.",
    "run": "The run has started on the workers: its outcome appears below in a moment (reload the page).",
    "pause": "Paused: it will not run on its schedule until you resume it.",
    "resume": "Resumed: it runs again from its next scheduled time.",
    "approve": "Approved: the file is being imported, and the people missing from it deactivated.",
}


def _missing(who: Admin, message: str) -> Response:
    return page("admin/missing.html", 404, who=who, message=message)


def _source_id(request: Request) -> int:
    value: int = request.path_params["source_id"]
    if value > _MAX_ID:
        raise SourceNotFound(f"There is no automatic import {value} here.")
    return value


async def sources_page(request: Request, problem: str | None = None, status: int = 200) -> Response:
    who = await session.admin(request)
    shown = await store.list_sources(pool_of(request), who.tenant)
    timezone = await tenant_timezone(pool_of(request), who.tenant)
    return page("admin/sources.html", status, who=who, sources=shown, timezone=timezone, problem=problem)


def _form_page(
    who: Admin, values: Mapping[str, str], fingerprint: str | None, timezone: str, **extra: Any
) -> Response:
    return page(
        "admin/source_new.html",
        extra.pop("status", 200),
        who=who,
        values=values,
        fingerprint=fingerprint,
        timezone=timezone,
        modes={m: MODE_LABELS[m] for m in FILE_MODES},
        blanks=BLANK_LABELS,
        invite_labels=SOURCE_INVITES,
        sftp=values.get("url", "").startswith("sftp:"),
        **extra,
    )


async def check_server(request: Request) -> Response:
    """Step 1: the server's address; for SFTP, the key it presents, to confirm on the next page."""
    who, form = await session.admin_post(request)
    url = form.get("url", "").strip()
    timezone = await tenant_timezone(pool_of(request), who.tenant)
    try:
        location = parse_location(url)
        fingerprint = None
        if location.kind == SourceKind.SFTP:
            fingerprint = (await server_host_key(location, settings_of(request))).fingerprint
    except BulkImportError as refused:
        return await sources_page(request, f"That server cannot be used: {refused}.", 400)
    values = {
        "url": url,
        "schedule": DEFAULT_SCHEDULE,
        "mode": DEFAULT_MODE,
        "blank_cells": DEFAULT_BLANK_CELLS,
    }
    return _form_page(who, values, fingerprint, timezone)


def _secrets(form: Mapping[str, str]) -> tuple[Secrets, str | None]:
    header_name = form.get("header_name", "").strip() or None
    return (
        Secrets(
            password=form.get("password") or None,
            private_key=form.get("private_key", "").strip() or None,
            header_value=form.get("header_value") or None,
        ),
        header_name,
    )


def _options(form: Mapping[str, str]) -> ImportOptions:
    # A value that is no choice (an edited page) falls back to the default, as on the settings page.
    mode = form.get("mode", "")
    blank = form.get("blank_cells", "")
    invites = form.get("invites", "")
    return ImportOptions(
        mode=Mode(mode) if mode in FILE_MODES else DEFAULT_MODE,
        blank_cells=BlankCells(blank) if blank in tuple(BlankCells) else DEFAULT_BLANK_CELLS,
        invites=InviteOption(invites) if invites in SOURCE_INVITES else InviteOption.NONE,
    )


async def add_source(request: Request) -> Response:
    """Step 2: save the source, its SFTP key pinned only if it is the one the admin confirmed."""
    who, form = await session.admin_post(request)
    timezone = await tenant_timezone(pool_of(request), who.tenant)
    fingerprint = form.get("fingerprint") or None
    secrets, header_name = _secrets(form)
    confirmed = fingerprint if form.get("confirm") == "yes" else None
    try:
        if fingerprint and confirmed is None:
            raise BulkImportError("confirm that the server's key is your server's (tick the box) to save it")
        new = NewSource(
            tenant=who.tenant,
            name=form.get("name", ""),
            url=form.get("url", ""),
            secrets=secrets,
            header_name=header_name,
            host_key=confirmed,
            schedule=form.get("schedule"),
            options=_options(form),
        )
        async with pool_of(request).acquire() as conn:
            shown = await store.add_source(conn, new, settings_of(request), datetime.now(UTC))
    except BulkImportError as refused:
        # The secrets are not sent back into the page: the admin types them again.
        kept = {k: v for k, v in form.items() if k not in ("password", "private_key", "header_value", "csrf")}
        return _form_page(who, kept, fingerprint, timezone, problem=f"Not saved: {refused}.", status=400)
    log.info("admin.source.added", tenant=who.tenant, source_id=shown["id"])
    return RedirectResponse(f"/admin/sources/{shown['id']}?done=added", status_code=303)


async def source_page(request: Request, problem: str | None = None, tested: str | None = None) -> Response:
    who = await session.admin(request)
    try:
        shown = await store.get_source(pool_of(request), who.tenant, _source_id(request))
    except SourceNotFound:
        return _missing(who, f"There is no automatic import {request.path_params['source_id']} here.")
    timezone = await tenant_timezone(pool_of(request), who.tenant)
    return page(
        "admin/source.html",
        409 if problem else 200,
        who=who,
        source=shown,
        runs=await runs.runs_of_source(pool_of(request), who.tenant, shown["id"]),
        timezone=timezone,
        modes=MODE_LABELS,
        blanks=BLANK_LABELS,
        invite_labels=INVITE_LABELS,
        # Only our own words: a crafted link cannot put text on the page.
        notice=_NOTICES.get(request.query_params.get("done", "")) if problem is None else None,
        problem=problem,
        tested=tested,
    )


async def source_action(request: Request) -> Response:
    """test | run | pause | resume | remove, from the source's page."""
    who, _ = await session.admin_post(request)
    action = request.path_params["action"]
    try:
        source_id = (await store.get_source(pool_of(request), who.tenant, _source_id(request)))["id"]
    except SourceNotFound:
        return _missing(who, f"There is no automatic import {request.path_params['source_id']} here.")
    if action not in _ACTIONS:
        return _missing(who, f"There is no action {action!r}.")
    settings, now = settings_of(request), datetime.now(UTC)
    try:
        async with pool_of(request).acquire() as conn:
            if action == "test":
                found = await store.test_source(conn, who.tenant, source_id, settings)
                return await source_page(request, tested=f"The connection works: {found}.")
            if action == "run":
                await run_now(settings, who.tenant, source_id)
            elif action == "pause":
                await store.pause_source(conn, who.tenant, source_id, now)
            elif action == "resume":
                await store.resume_source(conn, who.tenant, source_id, now)
            else:
                await store.remove_source(conn, who.tenant, source_id, now)
    except BulkImportError as refused:
        log.info("admin.source.refused", tenant=who.tenant, source_id=source_id, action=action)
        verb = "The connection does not work" if action == "test" else "That could not be done"
        return await source_page(request, f"{verb}: {refused}.")
    log.info("admin.source.action", tenant=who.tenant, source_id=source_id, action=action)
    if action == "remove":
        return RedirectResponse("/admin/sources?done=removed", status_code=303)
    return RedirectResponse(f"/admin/sources/{source_id}?done={action}", status_code=303)


async def approve_run(request: Request) -> Response:
    """Import the file the sweep guard blocked a run on (a new run, with the approval)."""
    who, _ = await session.admin_post(request)
    run_id: int = request.path_params["run_id"]
    try:
        if run_id > _MAX_ID:
            raise SourceNotFound(f"no run {run_id}")
        run = await runs.get_run(pool_of(request), run_id, who.tenant)
        await run_now(settings_of(request), who.tenant, None, approve=run_id)
    except SourceNotFound:
        return _missing(who, f"There is no run {run_id} here.")
    except BulkImportError as refused:
        request.path_params["source_id"] = run["source"]
        return await source_page(request, f"That could not be done: {refused}.")
    return RedirectResponse(f"/admin/sources/{run['source']}?done=approve", status_code=303)
