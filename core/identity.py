"""Who each row of a file is: people keep who they are when their e-mail changes.

A row names its person by e-mail, and may also name them by Employee ID and
by the address they had (``Previous email``). How a row finds its stored
person is the import's match key (``core.vocabulary.MatchKey``): by e-mail
(the previous address first), or by employee id (a known id with another
address is a rename; a new id on a person without one adopts them). A row
that names a person some other way than their current address renames them.

Renames are resolved for the whole file at once, never row by row: the rows
of a file are applied in batches by concurrent workers, and a swap of two
addresses (A ↔ B) or a chain (a → b, b → c) spread over two batches would
either hit the unique (tenant, e-mail) index or leave one half done. So when
an import whose file has an Employee ID or a Previous email column starts
(the first dispatch, before any row is sent), :func:`resolve_import`
decides every row in one transaction, set-based over a scratch table
(``core/sql/identity.sql``): it rejects the rows that cannot be applied
whole (naming both people), skips in add-only the rows whose person exists
at another address, and writes every rename, recording the old addresses
for undo; the batches then find each renamed person at their row's address,
as any other. The review runs the same statements over its own rows
(:func:`find_identities`), so it predicts the same renames and rejections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from core.columns import COLUMNS_BY_NAME, EMPLOYEE_ID, PREVIOUS_EMAIL
from core.db import QUERIES
from core.vocabulary import ImportState, MatchKey, Mode, PersonStatus

IDENTITY_CREATE_TABLE = QUERIES["identity_create_table"]
IDENTITY_ROWS_OF_IMPORT = QUERIES["identity_rows_of_import"]
IDENTITY_ANALYZE = QUERIES["identity_analyze"]
LOCK_IMPORT_IDENTITIES = QUERIES["lock_import_identities"]
IMPORT_IDENTITIES_PENDING = QUERIES["import_identities_pending"]
IDENTITY_LOCK_PEOPLE = QUERIES["identity_lock_people"]
IDENTITY_MATCH = QUERIES["identity_match"]
IDENTITY_SAME_PERSON = QUERIES["identity_same_person"]
IDENTITY_TAKEN_ADDRESSES = QUERIES["identity_taken_addresses"]
IDENTITY_PROBLEMS = QUERIES["identity_problems"]
IDENTITY_REJECT_ROWS = QUERIES["identity_reject_rows"]
IDENTITY_SETTLE_SKIPS = QUERIES["identity_settle_skips"]
IDENTITY_VACATE_ADDRESSES = QUERIES["identity_vacate_addresses"]
IDENTITY_RENAME_PEOPLE = QUERIES["identity_rename_people"]

__all__ = ["Rejection", "create_identity_table", "find_identities", "problem_message", "resolve_import"]

log = structlog.get_logger(__name__)

# The column each kind of problem is about (the one to correct).
_FIELD_OF_VIA = {"employee_id": EMPLOYEE_ID, "previous_email": PREVIOUS_EMAIL, "email": "email"}


@dataclass(frozen=True)
class Rejection:
    """A row rejected because of who it is: its column (a field), value and message."""

    row: int
    field: str
    value: str
    message: str


def _who(first: str | None, last: str | None, email: str | None, employee_id: str | None) -> str:
    name = " ".join(part for part in (first, last) if part)
    ident = f", employee id {employee_id}" if employee_id else ""
    return f"{name} ({email}{ident})" if name else f"{email}{ident}"


def problem_message(r: Mapping[str, Any]) -> Rejection:
    """The rejection of one row of ``identity_problems``, naming both people (or rows) involved."""
    person = (
        _who(r["person_first_name"], r["person_last_name"], r["person_email"], r["person_employee_id"])
        if r["person_email"] is not None
        else None
    )
    other = _who(r["other_first_name"], r["other_last_name"], r["other_email"], r["other_employee_id"])
    if r["other_status"] == PersonStatus.DEACTIVATED:
        other += ", deactivated"
    problem, subject = r["problem"], person or "the new person on this row"
    if problem == "same_person":
        field = _FIELD_OF_VIA[r["via"]]
        message = f"row {r['other_row']} is already {person}: each person may appear only once in a file"
    elif problem == "address_taken" and r["other_row"] is not None:
        field = "email"
        message = (
            f"{r['email']} is the address of {other}, whose own row (row {r['other_row']}) cannot be"
            f" applied: {subject} cannot take it until that row can"
        )
    elif problem == "address_taken":
        field = "email"
        message = (
            f"{r['email']} is the address of {other}, and this file gives them no other one:"
            f" {subject} cannot take it; give them their new address in this file too, or correct this one"
        )
    elif problem == "previous_has_other_id":
        field = PREVIOUS_EMAIL
        message = (
            f"{r['previous_email']} is {other}, whose employee id is not {r['employee_id']}:"
            " correct the Employee ID or the Previous email"
        )
    elif problem == "other_id":
        field = EMPLOYEE_ID
        message = (
            f"{person} has employee id {r['person_employee_id']}, not {r['employee_id']}:"
            " an employee id never changes; correct it"
        )
    else:  # id_taken
        field = EMPLOYEE_ID
        message = (
            f"employee id {r['employee_id']} is {other}'s, so it cannot be {subject}'s too; to change"
            " a person's address by their employee id, match people by employee id"
        )
    value = {"email": r["email"], EMPLOYEE_ID: r["employee_id"], PREVIOUS_EMAIL: r["previous_email"]}[field]
    return Rejection(r["row_number"], field, value or "", message)


async def create_identity_table(conn: asyncpg.Connection) -> None:
    """Create the scratch table (``identity_rows``) that the caller then fills with its valid rows."""
    await conn.execute(IDENTITY_CREATE_TABLE)


async def find_identities(
    conn: asyncpg.Connection, tenant: str, match_by: MatchKey, add_only: bool, *, analyze: bool = True
) -> list[Rejection]:
    """Resolve the rows in ``identity_rows``: who each is, which cannot be applied; return those.

    Writes only the scratch table: the review's read-only transaction runs it
    as the import's does (:func:`resolve_import`). ``analyze``: the table was
    just filled (its statistics are needed by the statements here).
    """
    if analyze:
        await conn.execute(IDENTITY_ANALYZE)
    await conn.execute(IDENTITY_MATCH, tenant, match_by == MatchKey.EMPLOYEE_ID)
    await conn.execute(IDENTITY_SAME_PERSON)
    await conn.execute(IDENTITY_TAKEN_ADDRESSES, tenant, add_only)
    return [problem_message(r) for r in await conn.fetch(IDENTITY_PROBLEMS)]


def _header(columns: Mapping[str, Any], field: str) -> str:
    """The file's header for ``field``, as the import recorded its mapping (else the template's)."""
    for header, name in (columns.get("matched") or {}).items():
        if name == field:
            return str(header)
    return COLUMNS_BY_NAME[field].header


async def resolve_import(conn: asyncpg.Connection, import_id: int) -> bool:
    """Resolve a starting import's rows and apply its renames, in one transaction; True if it did.

    Nothing to do (False) unless the import is running, its file names people
    by employee id or previous address, and this has not run before for it
    (a resumed import): safe to repeat.
    """
    if not await conn.fetchval(IMPORT_IDENTITIES_PENDING, import_id):
        return False
    async with conn.transaction():
        imp = await conn.fetchrow(LOCK_IMPORT_IDENTITIES, import_id)
        if (
            imp is None
            or imp["state"] != ImportState.RUNNING
            or not imp["identity_keys"]
            or imp["identities_resolved_at"] is not None
        ):
            return False
        tenant, add_only = imp["tenant_id"], imp["mode"] == Mode.ADD_ONLY
        await create_identity_table(conn)
        await conn.execute(IDENTITY_ROWS_OF_IMPORT, import_id)
        await conn.execute(IDENTITY_ANALYZE)
        await conn.execute(IDENTITY_LOCK_PEOPLE, tenant)
        rejected = await find_identities(conn, tenant, MatchKey(imp["match_by"]), add_only, analyze=False)
        if rejected:
            await conn.execute(
                IDENTITY_REJECT_ROWS,
                import_id,
                [r.row for r in rejected],
                [_header(imp["columns"], r.field) for r in rejected],
                [r.message for r in rejected],
                [r.value for r in rejected],
            )
        if add_only:
            await conn.execute(IDENTITY_SETTLE_SKIPS, import_id)
        else:
            await conn.execute(IDENTITY_VACATE_ADDRESSES, tenant)
        await conn.execute(IDENTITY_RENAME_PEOPLE, tenant, import_id, add_only)
    log.info("import.identities_resolved", import_id=import_id, rejected=len(rejected))
    return True
