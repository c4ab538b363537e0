"""The admin's import, step by step: upload, columns, review, settings, start.

Each step is a page of its own under ``/admin/uploads/{draft}``; the file
waits in its draft (:mod:`producer.web.admin.drafts`) until the import
starts. The steps call the producer's own functions, as the command line and
the API do: ``map_header`` and the tenant's remembered column choices, the
review (``review_file``, kept in the draft so its pages and the settings reuse
it), and ``submit_import_async``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.columns import COLUMNS, COLUMNS_BY_NAME
from core.db import connection
from core.errors import BulkImportError, TooLarge
from core.intake.choices import remembered_choices
from core.intake.mapping import ColumnMapping, map_header, shown_headers
from core.intake.options import ImportOptions, OptionError, parse_time
from core.intake.reading import open_source
from core.intake.review import review_file
from core.intake.submit import ImportRequest, submit_import_async
from core.tenants import tenant_match_key, tenant_timezone
from core.vocabulary import (
    DEFAULT_BLANK_CELLS,
    DEFAULT_MODE,
    FILE_MODES,
    BlankCells,
    InviteOption,
    MatchKey,
    Mode,
)
from producer.web import downloads
from producer.web.admin import drafts, session
from producer.web.admin.drafts import Draft, UploadRefused
from producer.web.admin.session import Admin
from producer.web.context import pool_of, settings_of
from producer.web.offload import in_own_loop
from producer.web.pages import page

log = structlog.get_logger(__name__)

SAMPLE_ROWS = 3
CHANGES_PER_PAGE = 50
CHANGES_KEPT = 5_000  # updated people listed in the review's pages; the counts cover every row
IGNORE = ""  # the columns form's value for "ignore this column"

# The article's words for the modes, invites and blank cells, listed once for every page.
MODE_LABELS = {
    Mode.UPSERT: "Add new people and update the ones already here",
    Mode.SYNC: "Add and update, and deactivate everyone who is not in the file",
    Mode.ADD_ONLY: "Only add new people; leave the ones already here as they are",
}
BLANK_LABELS = {
    BlankCells.CLEAR: "An empty cell clears the value stored for that person",
    BlankCells.KEEP: "Don't overwrite existing data with empty cells",
}
MATCH_LABELS = {
    MatchKey.EMAIL: "By e-mail address (a Previous email column changes someone's address)",
    MatchKey.EMPLOYEE_ID: "By Employee ID (a person whose address changed keeps who they are)",
}
INVITE_LABELS = {
    InviteOption.NONE: "Don't send invitations (you can send them later)",
    InviteOption.NOW: "Send invitations now",
    InviteOption.AT: "Send invitations at a date and time",
}


def _draft(request: Request, who: Admin) -> Draft:
    """The path's draft, if it is this tenant's; DraftNotFound (a "not found" page) otherwise."""
    return drafts.load_draft(settings_of(request), request.path_params["draft"], who.tenant)


async def on_draft_not_found(request: Request, exc: Exception) -> Response:
    """An upload that is gone, or another tenant's: "not found", with the way on."""
    return _missing(await session.admin(request), str(exc))


def _missing(who: Admin, message: str) -> Response:
    return page("admin/missing.html", 404, who=who, message=message)


C = TypeVar("C", bound=str)


def _choice(value: str | None, choices: tuple[C, ...], default: C) -> C:
    return value if value in choices else default


# --- start: the template and the upload ------------------------------------------------


async def start_page(request: Request, problem: str | None = None, status: int = 200) -> Response:
    who = await session.admin(request)
    limit_mb = settings_of(request).api_max_upload_bytes / 1024 / 1024
    return page("admin/start.html", status, who=who, limit_mb=limit_mb, problem=problem, step=1)


async def template_csv(request: Request) -> Response:
    await session.admin(request)
    return downloads.template_csv(example=request.query_params.get("example") == "1")


async def upload(request: Request) -> Response:
    who = await session.admin(request)
    settings = settings_of(request)
    try:
        draft, csrf = await drafts.receive_upload(request, settings, who.tenant)
    except UploadRefused as refused:
        return await start_page(request, str(refused), 413 if isinstance(refused, TooLarge) else 400)
    try:
        session.check_csrf(request, who.secret, csrf)
    except session.NotSignedIn:
        drafts.discard(draft, settings)
        raise
    log.info("admin.uploaded", tenant=who.tenant, draft=draft.id, bytes=draft.size)
    try:
        header, _ = await in_own_loop(_read_head(draft.file(settings), 0))
        async with connection(settings.database_url) as conn:
            remembered = await remembered_choices(conn, who.tenant, header)
        mapping = map_header(header, remembered)
    except BulkImportError as unreadable:
        drafts.discard(draft, settings)
        return await start_page(request, f"{draft.filename}: {unreadable}", 400)
    drafts.choose_columns(draft, settings, remembered)
    # Nothing to decide: every column matched (or was decided before for this tenant).
    target = "review" if not mapping.unmatched and not mapping.missing_required else "columns"
    return RedirectResponse(f"/admin/uploads/{draft.id}/{target}", status_code=303)


async def _read_head(path: Any, rows: int) -> tuple[list[str], list[list[str]]]:
    with open_source(path) as source:
        return list(source.header), [row.values for row in itertools.islice(source.rows(), rows)]


# --- columns: what each header means ---------------------------------------------------


def _column_rows(
    header: list[str], samples: list[list[str]], mapping: ColumnMapping, remembered: dict[str, str | None]
) -> list[dict[str, Any]]:
    """One entry per header cell: its examples, what it maps to, and why."""
    rows = []
    for index, shown in enumerate(shown_headers(header)):
        field = mapping.matched.get(shown)
        if shown in mapping.chosen:
            how = "remembered" if shown in remembered else "chosen"
        elif shown in mapping.unmatched:
            how = "unmatched"
        elif shown in mapping.duplicates:
            how = "duplicate"
        elif shown in mapping.ignored:
            how = "ours"  # the Row and Reason columns of our own errors file
        else:
            how = "matched"
        examples = [row[index] for row in samples if index < len(row) and row[index].strip()]
        rows.append({"index": index, "header": shown, "field": field, "how": how, "examples": examples})
    return rows


async def columns_page(
    request: Request, problem: str | None = None, chosen: dict[str, str | None] | None = None
) -> Response:
    who = await session.admin(request)
    settings = settings_of(request)
    draft = _draft(request, who)
    header, samples = await in_own_loop(_read_head(draft.file(settings), SAMPLE_ROWS))
    async with connection(settings.database_url) as conn:
        remembered = await remembered_choices(conn, who.tenant, header)
    choices = chosen if chosen is not None else (draft.choices or {})
    try:
        mapping = map_header(header, choices)
    except BulkImportError as conflict:
        problem = problem or str(conflict)
        mapping = map_header(header, {})
    return page(
        "admin/columns.html",
        400 if problem else 200,
        who=who,
        draft=draft,
        step=2,
        columns=_column_rows(header, samples, mapping, remembered),
        fields=COLUMNS,
        missing=[COLUMNS_BY_NAME[name] for name in mapping.missing_required],
        hints=mapping.hints,
        ignore=IGNORE,
        problem=problem,
    )


async def choose_columns(request: Request) -> Response:
    who, form = await session.admin_post(request)
    settings = settings_of(request)
    draft = _draft(request, who)
    header, _ = await in_own_loop(_read_head(draft.file(settings), 0))
    automatic = map_header(header, {})
    async with connection(settings.database_url) as conn:
        remembered = await remembered_choices(conn, who.tenant, header)
    choices: dict[str, str | None] = {}
    for index, shown in enumerate(shown_headers(header)):
        picked = form.get(f"column-{index}")
        if picked is None:
            continue
        field = None if picked == IGNORE else picked
        if field is not None and field not in COLUMNS_BY_NAME:
            return await columns_page(request, f"{picked!r} is not one of our fields.", choices)
        # An unmatched column left ignored is remembered as such; a remembered
        # choice is restated, so that going back to the automatic match sticks.
        if field != automatic.matched.get(shown) or shown in automatic.unmatched or shown in remembered:
            choices[shown] = field
    try:
        mapping = map_header(header, choices)
    except BulkImportError as conflict:
        return await columns_page(request, str(conflict), choices)
    if mapping.missing_required:
        needed = ", ".join(COLUMNS_BY_NAME[name].header for name in mapping.missing_required)
        return await columns_page(
            request, f"Every person needs {needed}: choose the column that holds it.", choices
        )
    drafts.choose_columns(draft, settings, choices)
    log.info("admin.columns_chosen", tenant=who.tenant, draft=draft.id, choices=len(choices))
    return RedirectResponse(f"/admin/uploads/{draft.id}/review", status_code=303)


# --- review and settings ---------------------------------------------------------------


def _options(values: Mapping[str, str], draft: Draft) -> ImportOptions:
    """The admin's choices on a page (its query, or the settings form), over the draft's columns.

    A value that is no choice (an edited address) falls back to the default
    (for the match key: the tenant's remembered one); the send time counts
    only with invitations at a time.
    """
    invites = _choice(values.get("invites"), tuple(InviteOption), InviteOption.NONE)
    match_by = values.get("match_by")
    return ImportOptions(
        mode=_choice(values.get("mode"), FILE_MODES, DEFAULT_MODE),
        blank_cells=_choice(values.get("blank_cells"), tuple(BlankCells), DEFAULT_BLANK_CELLS),
        invites=invites,
        send_at=_send_at(values.get("send_at")) if invites == InviteOption.AT else None,
        allow_mass_deactivation=values.get("approve") == "yes",
        mapping=draft.choices or {},
        match_by=MatchKey(match_by) if match_by in tuple(MatchKey) else None,
    )


def _send_at(value: str | None) -> datetime:
    if not value:
        raise OptionError("send_at", "is missing: choose the date and time to send the invitations")
    return parse_time("send_at", value)


async def reviewed(request: Request, who: Admin, draft: Draft, options: ImportOptions) -> dict[str, Any]:
    """The review of ``draft`` with ``options``: kept in the draft, made on first use."""
    settings = settings_of(request)
    key = drafts.review_key(options.mode, options.blank_cells, options.match_by or "")
    review = drafts.cached_review(draft, settings, key)
    if review is not None:
        return review

    async def run() -> dict[str, Any]:
        async with connection(settings.database_url) as conn:
            return await review_file(
                conn,
                str(draft.file(settings)),
                who.tenant,
                options,
                max_share=settings.sweep_max_share,
                changes_limit=CHANGES_KEPT,
            )

    review = await in_own_loop(run())
    review["file"]["name"] = draft.filename
    drafts.keep_review(draft, settings, key, review)
    return review


async def review_page(request: Request) -> Response:
    who = await session.admin(request)
    draft = _draft(request, who)
    options = _reviewed_options(request.query_params, draft)
    review = await reviewed(request, who, draft, options)
    changes = review["changes"]["rows"]
    pages = max(1, -(-len(changes) // CHANGES_PER_PAGE))
    number = request.query_params.get("page", "1")
    current = min(max(int(number), 1), pages) if number.isdigit() else 1
    shown = changes[(current - 1) * CHANGES_PER_PAGE : current * CHANGES_PER_PAGE]
    return page(
        "admin/review.html",
        who=who,
        draft=draft,
        step=3,
        review=review,
        mode=options.mode,
        blank_cells=options.blank_cells,
        match_by=review["match_by"],
        modes=MODE_LABELS,
        blanks=BLANK_LABELS,
        matches=MATCH_LABELS,
        headers={field.name: field.header for field in COLUMNS},
        changes=shown,
        page_number=current,
        pages=pages,
    )


def _reviewed_options(values: Mapping[str, str], draft: Draft) -> ImportOptions:
    """The options a review needs (mode, empty cells, the columns): the send time plays no part."""
    return _options({k: v for k, v in values.items() if k not in ("invites", "send_at")}, draft)


async def settings_page(
    request: Request, form: Mapping[str, str] | None = None, problem: str | None = None
) -> Response:
    who = await session.admin(request)
    draft = _draft(request, who)
    values = form if form is not None else request.query_params
    options = _reviewed_options(values, draft)
    guard = None
    if options.mode == Mode.SYNC:
        preview = (await reviewed(request, who, draft, options))["preview"]
        guard = preview if preview.get("would_block") else None
    timezone = await tenant_timezone(pool_of(request), who.tenant)
    # Preselected: the key the review was made with, else the one the tenant's last import was given.
    match_by = options.match_by or await tenant_match_key(pool_of(request), who.tenant)
    invites = values.get("invites")
    return page(
        "admin/settings.html",
        400 if problem else 200,
        who=who,
        draft=draft,
        step=4,
        mode=options.mode,
        blank_cells=options.blank_cells,
        match_by=match_by,
        matches=MATCH_LABELS,
        invites=invites if invites in tuple(InviteOption) else InviteOption.NONE,
        send_at=values.get("send_at", ""),
        modes=MODE_LABELS,
        blanks=BLANK_LABELS,
        invite_labels=INVITE_LABELS,
        guard=guard,
        timezone=timezone,
        problem=problem,
    )


async def start_import(request: Request) -> Response:
    who, form = await session.admin_post(request)
    settings = settings_of(request)
    draft = _draft(request, who)
    try:
        options = _options(form, draft)
    except OptionError as bad:
        return await settings_page(request, form, _in_admin_words(bad))
    if options.mode == Mode.SYNC and not options.allow_mass_deactivation:
        preview = (await reviewed(request, who, draft, options))["preview"]
        if preview.get("would_block"):
            return await settings_page(
                request, form, "Check the people this would deactivate, then tick the box to approve it."
            )
    job = ImportRequest(
        tenant=who.tenant, options=options, filename=draft.filename, token_id=who.principal.token_id
    )
    try:
        import_id = await in_own_loop(submit_import_async(str(draft.file(settings)), job, settings))
    except BulkImportError as refused:
        return await settings_page(request, form, str(refused))
    drafts.discard(draft, settings)
    log.info(
        "admin.import_started",
        tenant=who.tenant,
        import_id=import_id,
        mode=options.mode,
        invites=options.invites,
    )
    return RedirectResponse(f"/admin/imports/{import_id}", status_code=303)


# How the settings page names the options it shows, in an option's error message.
_ADMIN_NAMES = {
    "send_at": "The date and time",
    "mode": "What the import should do",
    "invites": "Invitations",
    "match_by": "How people are recognised",
}


def _in_admin_words(refused: OptionError) -> str:
    return refused.spelled(_ADMIN_NAMES.get(refused.option, refused.option)) + "."
