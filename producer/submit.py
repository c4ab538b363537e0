"""Submitting an import: read the file, record it durably, then send its rows.

The order matters for recovery: the import and every row are committed to
PostgreSQL in one transaction (rows through COPY) before any message is sent,
so whatever happens to Redis or to this process afterwards, ``bulk-import
resume`` can re-send what has not settled.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import asyncpg
import redis
import structlog

from core import outbox
from core.db import connection
from core.errors import BulkImportError, FileRejected, ServiceUnavailable
from core.imports import ANALYZE_AFTER_ROWS, start_next_import
from core.logs import redact
from core.rows import COUNTER_SHARDS
from core.settings import Settings, get_settings
from core.vocabulary import DEFAULT_BLANK_CELLS, DEFAULT_MODE, FILE_MODES, BlankCells, InviteOption, RowStatus

# FILE_MODES and tuple(InviteOption) are re-exported: the CLI and the API take their choices from here.
from producer.choices import map_with_choices, remember_choices
from producer.fields import FIELDS_BY_NAME
from producer.mapping import ColumnMapping, check_choices
from producer.queries import QUERIES
from producer.reading import Source, open_source
from producer.validation import validate_row

log = structlog.get_logger(__name__)

MAX_EXTERNAL_ID_CHARS = 255
_ROW_COLUMNS = ("import_id", "row_number", "email", "data", "raw", "status", "errors")


@dataclass(frozen=True)
class ImportRequest:
    """What an admin or a service asks for."""

    tenant: str
    mode: str = DEFAULT_MODE
    blank_cells: str = DEFAULT_BLANK_CELLS  # keep: a blank cell leaves the stored value
    invites: str = InviteOption.NONE
    send_at: datetime | None = None
    allow_mass_deactivation: bool = False
    idempotency_key: str | None = None
    filename: str | None = None
    sheet: str | None = None  # a workbook's sheet; None: the first whose header matches
    # The admin's column choices (header → field, None: ignore), remembered for the tenant.
    mapping: dict[str, str | None] | None = None
    token_id: int | None = None  # the API token it came with (None: the command line)
    # The caller's own reference, sent back in the import's webhook events.
    external_id: str | None = None

    def check(self) -> None:
        """Refuse a request that cannot be carried out, naming the fix."""
        if self.mode not in FILE_MODES:
            raise BulkImportError(f"unknown mode {self.mode!r}: choose one of {', '.join(FILE_MODES)}")
        check_blank_cells(self.blank_cells)
        if self.invites not in tuple(InviteOption):
            raise BulkImportError(
                f"unknown invites option {self.invites!r}: choose one of {', '.join(tuple(InviteOption))}"
            )
        if (self.invites == InviteOption.AT) != (self.send_at is not None):
            raise BulkImportError("--send-at is required with --invites at, and only with it")
        if self.send_at is not None and self.send_at.tzinfo is None:
            raise BulkImportError("send_at must be timezone-aware by the time it reaches submit")
        check_choices(self.mapping or {})
        if self.external_id is not None and (
            not 1 <= len(self.external_id) <= MAX_EXTERNAL_ID_CHARS or not self.external_id.isprintable()
        ):
            raise BulkImportError(
                f"external_id must be 1 to {MAX_EXTERNAL_ID_CHARS} printable characters (your own reference)"
            )


def check_blank_cells(blank_cells: str) -> None:
    """Refuse an unknown ``blank_cells`` option, naming the allowed values."""
    if blank_cells not in tuple(BlankCells):
        raise BulkImportError(
            f"unknown blank_cells option {blank_cells!r}: choose one of {', '.join(tuple(BlankCells))}"
        )


def require_importable(mapping: ColumnMapping) -> None:
    """Raise FileRejected when required columns are missing, with hints."""
    if not mapping.missing_required:
        return
    parts = []
    for field in mapping.missing_required:
        header = FIELDS_BY_NAME[field].header
        hint = mapping.hints.get(field)
        parts.append(f"{header!r}" + (f" (is {hint!r} meant to be it?)" if hint else ""))
    raise FileRejected(
        "the file has no column for "
        + ", ".join(parts)
        + ": add it, or rename the column to the template's header"
    )


def no_data_rows(source: Source) -> str:
    """The message for a file with a header and nothing under it."""
    return f"the file has no data rows under its header (row {source.header_row}): nothing to import"


async def _row_records(
    import_id: int, source: Source, mapping: ColumnMapping
) -> AsyncIterator[tuple[Any, ...]]:
    email_column = mapping.fields["email"]
    for count, source_row in enumerate(source.rows(), start=1):
        result = validate_row(source_row.line, source_row.values, mapping)
        cells = source_row.values
        if result.row is not None:
            data = dict(result.row.fields)
            yield (import_id, source_row.line, result.row.email, data, cells, RowStatus.PENDING, None)
        else:
            raw_email = cells[email_column] if email_column < len(cells) else ""
            errors = [{"column": p.column, "value": p.value, "message": p.message} for p in result.errors]
            yield (
                import_id,
                source_row.line,
                raw_email.strip().lower() or None,
                None,
                cells,
                RowStatus.INVALID,
                errors,
            )
        if count % 5_000 == 0:
            # Let the event loop breathe: COPY keeps streaming meanwhile.
            await asyncio.sleep(0)


async def record_import(conn: asyncpg.Connection, request: ImportRequest, source: Source) -> int:
    """Record the import and all its rows in one transaction; return its id.

    The columns are mapped with the tenant's remembered choices overlaid by the
    request's own, which are remembered in the same transaction.
    """
    mapping, remembered = await map_with_choices(conn, request.tenant, source.header, request.mapping)
    require_importable(mapping)
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
        await conn.execute(QUERIES["ensure_tenant"], request.tenant)
        if request.idempotency_key:
            existing = await conn.fetchval(
                QUERIES["find_import_by_idempotency_key"], request.tenant, request.idempotency_key
            )
            if existing is not None:
                return int(existing)
        await remember_choices(
            conn, request.tenant, {h: f for h, f in mapping.chosen.items() if h not in remembered}
        )
        import_id: int = await conn.fetchval(
            QUERIES["insert_import"],
            request.tenant,
            request.mode,
            request.invites,
            request.send_at,
            request.allow_mass_deactivation,
            request.filename,
            columns,
            request.idempotency_key,
            request.blank_cells,
            request.token_id,
            request.external_id,
        )
        await conn.execute(QUERIES["insert_import_counters"], import_id, COUNTER_SHARDS)
        copied = await conn.copy_records_to_table(
            "import_rows", records=_row_records(import_id, source, mapping), columns=_ROW_COLUMNS
        )
        await conn.execute(QUERIES["plan_without_nested_loops"])
        email_header = mapping.header_of("email")
        await conn.execute(
            QUERIES["reject_duplicate_emails"], import_id, email_header, mapping.fields["email"]
        )
        if not await conn.fetchval(QUERIES["set_import_totals"], import_id, source.blank_rows):
            # Rolls the import back: a header alone is an export that came out
            # empty, and in sync mode it would mean "deactivate everyone".
            raise FileRejected(no_data_rows(source))
    if int(copied.split()[-1]) >= ANALYZE_AFTER_ROWS:
        # Once committed, so that the statistics everyone plans with know the
        # new rows before anything is planned over them (team creation,
        # dispatch, the workers' batches): with statistics that only knew an
        # earlier, smaller import, the planner expected one row here. Not in
        # the transaction: ANALYZE would hold its lock on import_rows (which
        # every other import's ANALYZE waits for) until the commit.
        await conn.execute(QUERIES["analyze_recorded_rows"])
    log.info("import.recorded", import_id=import_id, tenant=request.tenant)
    return import_id


async def submit_import_async(
    source: str | os.PathLike[str] | BinaryIO,
    request: ImportRequest,
    settings: Settings | None = None,
) -> int:
    """Record an import and start it (or queue it behind the tenant's current one)."""
    settings = settings or get_settings()
    request.check()
    with open_source(source, sheet=request.sheet) as csv_source:
        async with connection(settings.database_url) as conn:
            import_id = await record_import(conn, request, csv_source)
            started = await start_next_import(conn, request.tenant)
            if started is not None:
                try:
                    await outbox.dispatch_rows(conn, started)
                except redis.exceptions.ConnectionError as exc:
                    raise ServiceUnavailable(
                        f"import {started} is recorded but its rows could not be queued ({redact(str(exc))});"
                        f" once Redis answers, run `bulk-import resume {started}`"
                    ) from None
    return import_id


def submit_import(
    source: str | os.PathLike[str] | BinaryIO,
    tenant: str,
    *,
    mode: str = DEFAULT_MODE,
    blank_cells: str = DEFAULT_BLANK_CELLS,
    invites: str = InviteOption.NONE,
    send_at: datetime | None = None,
    allow_mass_deactivation: bool = False,
    idempotency_key: str | None = None,
    sheet: str | None = None,
    mapping: dict[str, str | None] | None = None,
    external_id: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Start an import of ``source`` (a path or a binary stream: CSV, xlsx, ods or xls) for ``tenant``.

    ``sheet`` names a workbook's sheet (default: the first whose header matches).
    ``blank_cells``: ``clear`` (a blank cell clears the stored value) or ``keep``
    (it leaves the stored value as it is). ``mapping`` maps a header of the
    file to a field name, or to None to ignore the column; these choices are
    remembered for the tenant and apply to its later files with the same header.
    ``external_id``: the caller's own reference, returned in the import's
    status and webhook events.

    Returns the import id at once; the work runs on the workers. Poll it with
    ``bulk-import status ID`` or :func:`producer.reports.import_status`.
    Raises :class:`core.errors.FileRejected` when the file cannot be
    imported at all, and :class:`core.errors.BulkImportError` for a bad request.
    """
    filename = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
    request = ImportRequest(
        tenant=tenant,
        mode=mode,
        blank_cells=blank_cells,
        invites=invites,
        send_at=send_at,
        allow_mass_deactivation=allow_mass_deactivation,
        idempotency_key=idempotency_key,
        sheet=sheet,
        mapping=mapping,
        external_id=external_id,
        filename=os.path.basename(filename) if filename else None,
    )
    return asyncio.run(submit_import_async(source, request, settings))
