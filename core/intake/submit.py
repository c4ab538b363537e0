"""Submitting an import: read the file, record it durably, then send its rows.

The order matters for recovery: the import and every row are committed to
PostgreSQL in one transaction (rows through COPY) before any message is sent,
so whatever happens to Redis or to this process afterwards, ``bulk-import
resume`` can re-send what has not settled. In upsert and sync, the rows that
would change nothing of their stored person are written as unchanged in that
transaction (``core.intake.settling``: each row is written once, its status
decided before) and never become messages: a nightly file of a whole
population costs what changed in it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import asyncpg
import structlog

from core import outbox, queues
from core.columns import COLUMNS_BY_NAME, EMPLOYEE_ID
from core.db import connection
from core.errors import BulkImportError, FileRejected, ServiceUnavailable
from core.imports import ANALYZE_AFTER_ROWS, start_next_import
from core.intake.choices import map_with_choices, remember_choices
from core.intake.mapping import ColumnMapping
from core.intake.options import OPTION_NAMES, ImportOptions
from core.intake.queries import QUERIES
from core.intake.reading import Source, open_source
from core.intake.settling import write_rows
from core.intake.validation import raw_keys, validate_row
from core.logs import redact
from core.rows import COUNTER_SHARDS
from core.settings import Settings, get_settings
from core.tenants import ensure_tenant, remember_match_key, tenant_match_key, tenant_timezone
from core.vocabulary import BlankCells, ImportOrigin, MatchKey, Mode, RowStatus

FIND_IMPORT_BY_IDEMPOTENCY_KEY = QUERIES["find_import_by_idempotency_key"]
INSERT_IMPORT = QUERIES["insert_import"]
INSERT_IMPORT_COUNTERS = QUERIES["insert_import_counters"]
PLAN_WITHOUT_NESTED_LOOPS = QUERIES["plan_without_nested_loops"]
REJECT_DUPLICATE_EMAILS = QUERIES["reject_duplicate_emails"]
REJECT_DUPLICATE_EMPLOYEE_IDS = QUERIES["reject_duplicate_employee_ids"]
SET_IMPORT_TOTALS = QUERIES["set_import_totals"]
UNSETTLE_RENAMED_ROWS = QUERIES["unsettle_renamed_rows"]
ANALYZE_RECORDED_ROWS = QUERIES["analyze_recorded_rows"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class ImportRequest:
    """What an admin or a service asks for: an import of a tenant with its options, and where it came from."""

    tenant: str
    options: ImportOptions = field(default_factory=ImportOptions)
    idempotency_key: str | None = None
    filename: str | None = None
    token_id: int | None = None  # the API token it came with (None: the command line)
    source_id: int | None = None  # the scheduled source it was fetched by (core.sources)
    origin: ImportOrigin = ImportOrigin.FILE
    # What a row says beyond the file's columns, by row number: SCIM's ``{"active": False}``
    # (deactivate the person; core.rows). No file can say it.
    row_flags: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


def missing_required(mapping: ColumnMapping, match_by: MatchKey) -> list[str]:
    """The required fields the file has no column for; matching by employee id requires its column."""
    needs_id = match_by == MatchKey.EMPLOYEE_ID and EMPLOYEE_ID not in mapping.fields
    return [*mapping.missing_required, *([EMPLOYEE_ID] if needs_id else [])]


@dataclass
class _Keys:
    """Whether any valid row names its person by more than their address (an id, a previous one)."""

    seen: bool = False
    previous: bool = False  # any row (valid or not) names a previous address


def require_importable(mapping: ColumnMapping, match_by: MatchKey = MatchKey.EMAIL) -> None:
    """Raise FileRejected when required columns are missing, with hints."""
    missing = missing_required(mapping, match_by)
    if not missing:
        return
    if missing == [EMPLOYEE_ID]:
        raise FileRejected(
            f"the file has no {COLUMNS_BY_NAME[EMPLOYEE_ID].header!r} column, and people are matched by"
            " employee id: add the column, or match people by e-mail (--match-by email)"
        )
    parts = []
    for name in missing:
        header = COLUMNS_BY_NAME[name].header
        hint = mapping.hints.get(name)
        parts.append(f"{header!r}" + (f" (is {hint!r} meant to be it?)" if hint else ""))
    raise FileRejected(
        "the file has no column for "
        + ", ".join(parts)
        + ": add it, or rename the column to the template's header"
    )


def no_data_rows(source: Source) -> str:
    """The message for a file with a header and nothing under it."""
    return f"the file has no data rows under its header (row {source.header_row}): nothing to import"


def _row_records(
    source: Source,
    mapping: ColumnMapping,
    match_by: MatchKey,
    keys: _Keys,
    row_flags: Mapping[int, Mapping[str, Any]],
) -> Iterator[tuple[Any, ...]]:
    """Each row as a record of ``settling.ROW_FIELDS``: pending or invalid."""
    email_column = mapping.fields["email"]
    id_required = match_by == MatchKey.EMPLOYEE_ID
    for source_row in source.rows():
        result = validate_row(source_row.line, source_row.values, mapping, id_required=id_required)
        cells = source_row.values
        if result.row is not None:
            row = result.row
            data = dict(row.fields) | dict(row_flags.get(source_row.line, {}))
            employee_id = data.get(EMPLOYEE_ID)
            keys.seen = keys.seen or employee_id is not None or row.previous_email is not None
            keys.previous = keys.previous or row.previous_email is not None
            yield (
                source_row.line,
                row.email,
                data,
                cells,
                RowStatus.PENDING,
                None,
                employee_id,
                row.previous_email,
            )
        else:
            raw_email = cells[email_column] if email_column < len(cells) else ""
            errors = [{"column": p.column, "value": p.value, "message": p.message} for p in result.errors]
            yield (
                source_row.line,
                raw_email.strip().lower() or None,
                None,
                cells,
                RowStatus.INVALID,
                errors,
                *(keys_of_row := raw_keys(cells, mapping)),
            )
            keys.previous = keys.previous or keys_of_row[1] is not None


async def find_import_by_key(conn: asyncpg.Connection | asyncpg.Pool, tenant: str, key: str) -> int | None:
    """The tenant's import recorded with this idempotency key, if any."""
    found = await conn.fetchval(FIND_IMPORT_BY_IDEMPOTENCY_KEY, tenant, key)
    return None if found is None else int(found)


async def record_import(conn: asyncpg.Connection, request: ImportRequest, source: Source) -> int:
    """Record the import and all its rows in one transaction; return its id.

    The columns are mapped with the tenant's remembered choices overlaid by the
    request's own, which are remembered in the same transaction.
    """
    options = request.options
    mapping, remembered = await map_with_choices(conn, request.tenant, source.header, options.mapping)
    # Checked against the tenant's remembered key before the transaction, again inside it.
    require_importable(mapping, options.match_by or await tenant_match_key(conn, request.tenant))
    columns = {
        "header": source.header,
        "matched": mapping.matched,
        "unmatched": mapping.unmatched,
        "ignored": mapping.ignored,
        "mapping": mapping.chosen,
        "remembered": remembered,
        "encoding": source.encoding,
        "delimiter": source.delimiter,
        "format": source.format,
        "sheet": source.sheet,
    }
    async with conn.transaction():
        await ensure_tenant(conn, request.tenant)
        options = options.in_timezone(await tenant_timezone(conn, request.tenant))
        if request.idempotency_key:
            existing = await find_import_by_key(conn, request.tenant, request.idempotency_key)
            if existing is not None:
                return existing
        # A SCIM write names its columns and key itself: a tenant's files learn nothing from it.
        learns = request.origin == ImportOrigin.FILE
        if learns:
            await remember_choices(
                conn, request.tenant, {h: f for h, f in mapping.chosen.items() if h not in remembered}
            )
        if options.match_by is not None:
            match_by = options.match_by
            if learns:
                await remember_match_key(conn, request.tenant, match_by)
        else:
            match_by = await tenant_match_key(conn, request.tenant)
        require_importable(mapping, match_by)
        import_id: int = await conn.fetchval(
            INSERT_IMPORT,
            request.tenant,
            options.mode,
            options.invites,
            options.send_at,
            options.allow_mass_deactivation,
            request.filename,
            columns,
            request.idempotency_key,
            options.blank_cells,
            request.token_id,
            options.external_id,
            match_by,
            request.source_id,
            request.origin,
        )
        await conn.execute(INSERT_IMPORT_COUNTERS, import_id, COUNTER_SHARDS)
        # In upsert and sync the rows that change nothing are written settled
        # (core.intake.settling; the person's version is checked again before
        # finalizing: core.imports).
        settle = options.mode in (Mode.UPSERT, Mode.SYNC)
        copied = await write_rows(
            conn,
            _row_records(source, mapping, match_by, keys := _Keys(), request.row_flags),
            import_id=import_id,
            tenant=request.tenant,
            settle=settle,
            keep_blank_cells=options.blank_cells == BlankCells.KEEP,
        )
        await conn.execute(PLAN_WITHOUT_NESTED_LOOPS)
        email_header = mapping.header_of("email")
        await conn.execute(REJECT_DUPLICATE_EMAILS, import_id, email_header, mapping.fields["email"])
        if EMPLOYEE_ID in mapping.fields:
            id_header = mapping.header_of(EMPLOYEE_ID)
            await conn.execute(
                REJECT_DUPLICATE_EMPLOYEE_IDS, import_id, id_header, mapping.fields[EMPLOYEE_ID]
            )
        if settle and keys.previous:
            await conn.execute(UNSETTLE_RENAMED_ROWS, import_id)
        totals = await conn.fetchrow(SET_IMPORT_TOTALS, import_id, source.blank_rows, keys.seen)
        unchanged = totals["unchanged_at_recording"]
        if not totals["total_rows"]:
            # Rolls the import back: a header alone is an export that came out
            # empty, and in sync mode it would mean "deactivate everyone".
            raise FileRejected(no_data_rows(source))
    if copied >= ANALYZE_AFTER_ROWS:
        # Once committed, so that the statistics everyone plans with know the
        # new rows before anything is planned over them (team creation,
        # dispatch, the workers' batches): with statistics that only knew an
        # earlier, smaller import, the planner expected one row here. Not in
        # the transaction: ANALYZE would hold its lock on import_rows (which
        # every other import's ANALYZE waits for) until the commit.
        await conn.execute(ANALYZE_RECORDED_ROWS)
    log.info("import.recorded", import_id=import_id, tenant=request.tenant, unchanged=unchanged)
    return import_id


async def submit_import_async(
    source: str | os.PathLike[str] | BinaryIO,
    request: ImportRequest,
    settings: Settings | None = None,
) -> int:
    """Record an import and start it (or queue it behind the tenant's current one)."""
    settings = settings or get_settings()
    with open_source(source, sheet=request.options.sheet) as csv_source:
        async with connection(settings.database_url) as conn:
            import_id = await record_import(conn, request, csv_source)
            started = await start_next_import(conn, request.tenant)
            if started is not None:
                try:
                    await outbox.dispatch_rows(conn, started)
                except queues.BROKER_UNREACHABLE as exc:
                    raise ServiceUnavailable(
                        f"import {started} is recorded but its rows could not be queued ({redact(str(exc))});"
                        f" once the broker answers, run `bulk-import resume {started}`"
                    ) from None
    return import_id


def submit_import(
    source: str | os.PathLike[str] | BinaryIO,
    tenant: str,
    *,
    idempotency_key: str | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> int:
    """Start an import of ``source`` (a path or a binary stream: CSV, xlsx, ods or xls) for ``tenant``.

    ``options`` are those of :class:`~core.intake.options.ImportOptions`:
    ``mode`` (``upsert``, ``sync`` or ``add-only``), ``blank_cells``
    (``clear``: a blank cell clears the stored value; ``keep``: it leaves the
    stored value as it is), ``invites`` and ``send_at``,
    ``allow_mass_deactivation``, ``sheet`` (a workbook's sheet; default: the
    first whose header matches), ``mapping`` (a header of the file → a field
    name, or None to ignore the column; remembered for the tenant and applied
    to its later files with the same header), ``external_id`` (the
    caller's own reference, returned in the import's status and webhook
    events) and ``match_by`` (``email`` or ``employee-id``: how a row finds
    its stored person; remembered for the tenant, whose remembered key applies
    when it is not given).

    Returns the import id at once; the work runs on the workers. Poll it with
    ``bulk-import status ID`` or :func:`producer.reports.import_status`.
    Raises :class:`core.errors.FileRejected` when the file cannot be
    imported at all, and :class:`core.errors.BulkImportError` for a bad
    request (:class:`~core.intake.options.OptionError` for a bad option).
    """
    filename = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    try:
        checked = ImportOptions(**options)
    except TypeError as unknown:
        raise BulkImportError(f"{unknown}: the options are {', '.join(OPTION_NAMES)}") from None
    request = ImportRequest(
        tenant=tenant,
        options=checked,
        idempotency_key=idempotency_key,
        filename=os.path.basename(filename) if filename else None,
    )
    return asyncio.run(submit_import_async(source, request, settings))
