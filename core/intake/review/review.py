"""Review a file before importing it: what matches, what is wrong, what the import would do.

:func:`review_file` reads the file the way the import does (``open_source``,
``map_header``, ``validate_row``), copies every row into a temporary table and
answers the rest set-based in PostgreSQL: repeated e-mails, the cross-row
warnings (:mod:`core.intake.review.checks`) and the preview against the tenant's
people. Memory stays flat for any file size: rows stream into COPY, and the
problem lists are capped (``truncated`` says by how much).

It changes nothing. Everything happens in one transaction that is always
rolled back; once the temporary table exists the transaction is made read
only, so PostgreSQL itself refuses any other write. The ``bulk-import
review`` command is :mod:`producer.cli.review`; its terminal report is
:mod:`producer.cli.review_report`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import asyncpg

from core.columns import COLUMNS_BY_NAME, EMPLOYEE_ID, VALUE_COLUMNS
from core.errors import BulkImportError, FileRejected
from core.identity import create_identity_table
from core.intake.choices import map_with_choices
from core.intake.mapping import ColumnMapping
from core.intake.options import ImportOptions
from core.intake.queries import QUERIES
from core.intake.reading import Source, open_source
from core.intake.review.changes import CHANGES_PAGE, ChangeRule, changed_rows, row_actions
from core.intake.review.checks import (
    ProblemLog,
    check_domain_typos,
    check_duplicate_emails,
    check_managers,
    check_team_variants,
    problem_dict,
)
from core.intake.review.identities import (
    check_duplicate_employee_ids,
    check_identities,
    email_changes,
    likely_renames,
)
from core.intake.submit import missing_required, no_data_rows, require_importable
from core.intake.validation import raw_keys, validate_row
from core.settings import get_settings
from core.tenants import tenant_match_key
from core.vocabulary import Action, BlankCells, MatchKey, Mode, RowStatus

REVIEW_ACTION_COUNTS = QUERIES["review_action_counts"]
REVIEW_CREATE_ROWS_TABLE = QUERIES["review_create_rows_table"]
REVIEW_READ_ONLY = QUERIES["review_read_only"]
REVIEW_WITHOUT_JIT = QUERIES["review_without_jit"]
REVIEW_ANALYZE_ROWS = QUERIES["review_analyze_rows"]
REVIEW_CLASSIFY_ROWS = QUERIES["review_classify_rows"]
REVIEW_SWEEP_COUNTS = QUERIES["review_sweep_counts"]
REVIEW_SWEEP_PEOPLE = QUERIES["review_sweep_people"]

__all__ = ["review_file"]

# Per-row details are for programs; past this many rows they are cut short.
ROW_DETAILS_CAP = 100_000
DEACTIVATE_LISTED = 1_000
# Why each of deactivate_people would be deactivated: the sweep has one rule.
SWEEP_REASON = "not in the file; admins are kept"
_YIELD_EVERY = 5_000
# review_rows has a column per value column of the vocabulary, under its name.
_STORED_FIELDS = tuple(column.name for column in VALUE_COLUMNS)
_COPY_COLUMNS = (
    "row_number",
    "email",
    "valid",
    "raw_email",
    "raw_primary_team",
    "raw_secondary_teams",
    "raw_role",
    "domain",
    "previous_email",
    "raw_employee_id",
    "match_email",
    *_STORED_FIELDS,
)


@dataclass
class _Tally:
    total: int = 0
    # A valid row names its person by employee id or previous address (core.identity runs).
    keys: bool = False


@dataclass(frozen=True)
class _Asked:
    """What the review is asked: the tenant and the options that change what the import does."""

    tenant: str
    mode: Mode
    blank_cells: BlankCells
    match_by: MatchKey


async def review_file(
    conn: asyncpg.Connection,
    source: str | os.PathLike[str] | BinaryIO,
    tenant: str,
    options: ImportOptions | None = None,
    *,
    row_details: bool = False,
    changes_offset: int = 0,
    changes_limit: int = CHANGES_PAGE,
    max_share: float | None = None,
) -> dict[str, Any]:
    """Review ``source`` for an import into ``tenant`` with ``options``; return the review JSON.

    Of the options, the review reads the mode, the blank-cells rule, the
    match key (None: the tenant's remembered one), the column choices and the
    sheet (the others only matter once imported).

    ``importable`` is false, with an ``error``, when required columns are
    missing; a file that cannot be read at all raises
    :class:`~core.errors.FileRejected`. ``row_details`` adds ``rows_preview``
    (each row's e-mail and action; an update also its ``changes``). The
    review always carries ``changes``, one page of the rows to update with
    what changes for each person (:mod:`core.intake.review.changes`):
    ``{"total", "offset", "limit", "rows": [{"row", "email", "name",
    "changes"}]}``, the ``changes_limit`` rows to update after the first
    ``changes_offset`` of them in file order (at most ``ROW_DETAILS_CAP``; 0:
    none). ``max_share`` is the sync sweep's guard
    (default: the ``SWEEP_MAX_SHARE`` setting). The column choices apply over
    the tenant's remembered ones; ``columns`` shows them (``chosen``,
    ``remembered``, ``ignored``). Writes nothing to the database (the choices
    are remembered by the import, not here).
    """
    options = options or ImportOptions()
    if changes_offset < 0 or changes_limit < 0:
        raise BulkImportError("changes_offset and changes_limit cannot be negative")
    page = (changes_offset, min(changes_limit, ROW_DETAILS_CAP))
    share = get_settings().sweep_max_share if max_share is None else max_share
    with open_source(source, sheet=options.sheet) as csv_source:
        columns, remembered = await map_with_choices(conn, tenant, csv_source.header, options.mapping)
        match_by = options.match_by or await tenant_match_key(conn, tenant)
        asked = _Asked(tenant, options.mode, options.blank_cells, match_by)
        transaction = conn.transaction()
        await transaction.start()
        try:
            review = await _review(conn, csv_source, columns, asked, share, row_details, page)
        finally:
            # Always rolled back: the review's only writes are to its temporary table.
            await transaction.rollback()
    review["columns"] |= {"ignored": columns.ignored, "chosen": columns.chosen, "remembered": remembered}
    if isinstance(source, (str, os.PathLike)):
        review["file"]["name"] = os.path.basename(os.fspath(source))
    return review


async def _review(
    conn: asyncpg.Connection,
    source: Source,
    mapping: ColumnMapping,
    asked: _Asked,
    share: float,
    row_details: bool,
    page: tuple[int, int],
) -> dict[str, Any]:
    tenant, mode, blank_cells = asked.tenant, asked.mode, asked.blank_cells
    errors, warnings = ProblemLog(), ProblemLog()
    tally = await _load_rows(conn, source, mapping, asked.match_by, errors, warnings)
    total = tally.total
    await _check_rows(conn, asked, tally.keys, mapping, errors, warnings)
    actions = {r["action"]: r["rows"] for r in await conn.fetch(REVIEW_ACTION_COUNTS)}
    missing = missing_required(mapping, asked.match_by)
    importable = not missing and total > 0
    renames = await likely_renames(conn, tenant, mode, mapping, warnings) if importable else None
    review: dict[str, Any] = {
        "tenant": tenant,
        "mode": mode,
        "blank_cells": blank_cells,
        "match_by": asked.match_by,
        "importable": importable,
        "file": {
            "name": None,
            "format": source.format,
            "sheet": source.sheet,
            "other_sheets": list(source.other_sheets),
            "encoding": source.encoding,
            "delimiter": source.delimiter,
            "header_row": source.header_row,
            "preamble": source.preamble,
        },
        "columns": {
            "matched": mapping.matched,
            "unmatched": mapping.unmatched,
            "missing_required": missing,
            "hints": mapping.hints,
            "duplicates": mapping.duplicates,
        },
        "rows": {
            "total": total,
            "valid": total - actions.get(RowStatus.INVALID, 0),
            "invalid": actions.get(RowStatus.INVALID, 0),
            "blank": source.blank_rows,
        },
        **_problems(errors, warnings),
        "preview": await _preview(conn, tenant, mode, share, actions, importable),
        "likely_renames": renames or {"total": 0, "pairs": []},
    }
    rule = ChangeRule(tenant, tuple(mapping.fields), mode == Mode.ADD_ONLY, blank_cells == BlankCells.KEEP)
    review["changes"] = await changed_rows(conn, rule, actions.get(Action.UPDATE, 0), *page)
    if not importable:
        try:
            require_importable(mapping, asked.match_by)
            review["error"] = no_data_rows(source)
        except FileRejected as exc:
            review["error"] = str(exc)
    if row_details:
        review["rows_preview"] = await row_actions(conn, rule, ROW_DETAILS_CAP)
        review["truncated"]["rows_preview"] = total - len(review["rows_preview"])
    return review


async def _load_rows(
    conn: asyncpg.Connection,
    source: Source,
    mapping: ColumnMapping,
    match_by: MatchKey,
    errors: ProblemLog,
    warnings: ProblemLog,
) -> _Tally:
    """Create the scratch tables, make the transaction read only, COPY every row in; return the counts."""
    tally = _Tally()
    await conn.execute(REVIEW_CREATE_ROWS_TABLE)
    await create_identity_table(conn)
    await conn.execute(REVIEW_READ_ONLY)
    await conn.execute(REVIEW_WITHOUT_JIT)
    records = _records(source, mapping, match_by, errors, warnings, tally)
    await conn.copy_records_to_table("review_rows", records=records, columns=_COPY_COLUMNS)
    errors.end_source()
    warnings.end_source()
    await conn.execute(REVIEW_ANALYZE_ROWS)
    return tally


async def _check_rows(
    conn: asyncpg.Connection,
    asked: _Asked,
    keys: bool,
    mapping: ColumnMapping,
    errors: ProblemLog,
    warnings: ProblemLog,
) -> None:
    """The cross-row checks, and each row's action (which the warnings depend on)."""
    tenant, mode = asked.tenant, asked.mode
    await check_duplicate_emails(conn, mapping, errors)
    await check_duplicate_employee_ids(conn, mapping, errors)
    if keys:
        # As the import will when it starts; without ids or previous addresses every row is
        # the person at its address, which is what review_rows says already.
        await check_identities(conn, tenant, asked.match_by, mode, mapping, errors)
    keep_blank = asked.blank_cells == BlankCells.KEEP
    await conn.execute(REVIEW_CLASSIFY_ROWS, tenant, list(mapping.fields), mode == Mode.ADD_ONLY, keep_blank)
    await conn.execute(REVIEW_ANALYZE_ROWS)  # the checks below filter on the new actions
    await check_domain_typos(conn, tenant, mapping, warnings)
    await check_team_variants(conn, tenant, mapping, warnings)
    await check_managers(conn, tenant, mode, mapping, warnings)


def _problems(errors: ProblemLog, warnings: ProblemLog) -> dict[str, Any]:
    listed = {"errors": errors.listed, "warnings": warnings.listed}
    return {
        "errors": [problem_dict(p) for p in listed["errors"]],
        "warnings": [problem_dict(p) for p in listed["warnings"]],
        "truncated": {
            "errors": errors.total - len(listed["errors"]),
            "warnings": warnings.total - len(listed["warnings"]),
        },
        "summary": {
            "errors": [g.as_dict() for g in errors.groups],
            "warnings": [g.as_dict() for g in warnings.groups],
        },
    }


async def _records(
    source: Source,
    mapping: ColumnMapping,
    match_by: MatchKey,
    errors: ProblemLog,
    warnings: ProblemLog,
    tally: _Tally,
) -> AsyncIterator[tuple[Any, ...]]:
    """Validate each row into the log and yield it for ``review_rows`` (see _COPY_COLUMNS)."""
    # A missing required column is reported once for the file, not on every row.
    missing = {COLUMNS_BY_NAME[name].header for name in missing_required(mapping, match_by)}
    fields = ("email", "primary_team", "secondary_teams", "role", EMPLOYEE_ID)
    positions = [mapping.fields.get(f) for f in fields]
    id_required = match_by == MatchKey.EMPLOYEE_ID
    for row in source.rows():
        tally.total += 1
        result = validate_row(row.line, row.values, mapping, id_required=id_required)
        for problem in result.errors:
            if problem.column not in missing:
                errors.add(problem)
        for problem in result.warnings:
            warnings.add(problem)
        raw = [row.values[i] if i is not None and i < len(row.values) else None for i in positions]
        if result.row is not None:
            clean = result.row
            domain, previous = clean.email.rpartition("@")[2], clean.previous_email
            tally.keys = tally.keys or previous is not None or clean.fields.get(EMPLOYEE_ID) is not None
            stored = (clean.fields.get(f) for f in _STORED_FIELDS)
            yield (row.line, clean.email, True, *raw[:4], domain, previous, raw[4], clean.email, *stored)
        else:
            # Lower-cased like the import's invalid rows: the sweep counts them as present, as it
            # does the person their Employee ID or previous address names.
            email = (raw[0] or "").strip().lower() or None
            employee_id, previous = raw_keys(row.values, mapping)
            stored = (employee_id if f == EMPLOYEE_ID else None for f in _STORED_FIELDS)
            yield (row.line, email, False, *raw[:4], None, previous, raw[4], None, *stored)
        if tally.total % _YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let the event loop breathe while COPY streams


async def _preview(
    conn: asyncpg.Connection,
    tenant: str,
    mode: Mode,
    share: float,
    actions: dict[str, int],
    importable: bool,
) -> dict[str, Any]:
    """The import's outcome counts; for sync, the sweep and whether its guard would stop it."""
    preview: dict[str, Any] = {action: actions.get(action, 0) for action in tuple(Action)}
    preview["email_changes"] = await email_changes(conn) if actions.get(Action.UPDATE) else 0
    preview |= {"deactivate": 0, "admins_kept": 0, "would_block": False, "deactivate_people": []}
    if mode != Mode.SYNC or not importable:
        return preview
    sweep = await conn.fetchrow(REVIEW_SWEEP_COUNTS, tenant)
    # The sweeper runs after the rows and counts the active people then.
    active = sweep["active"] + preview[Action.CREATE] + sweep["reactivated"]
    people = await conn.fetch(REVIEW_SWEEP_PEOPLE, tenant, DEACTIVATE_LISTED)
    preview |= {
        "deactivate": sweep["would_deactivate"],
        "admins_kept": sweep["admins_kept"],
        "active": active,
        "max_share": share,
        "would_block": sweep["would_deactivate"] > share * active,
        "deactivate_people": [r["email"] for r in people],
        "deactivate_reason": SWEEP_REASON,
    }
    return preview
