"""The review's checks of who each row is: repeated employee ids, renames, likely renames.

The import rejects a later row repeating an employee id (as a repeated
e-mail) and, when it starts, resolves who every row is with
``core.identity``; the review runs the same rules over its scratch table, so
it rejects the same rows and finds the same renames. Then, on its own, it
looks for the renames a file does not say: a person it would create and an
active person the file names nowhere (a sync would deactivate them) with the
same name and team, listed in pairs with what to add to the file.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from core.columns import EMPLOYEE_ID
from core.identity import find_identities
from core.intake.mapping import ColumnMapping
from core.intake.queries import QUERIES
from core.intake.review.checks import ProblemLog, stream
from core.intake.validation import Problem
from core.vocabulary import MatchKey, Mode

REVIEW_MARK_DUPLICATE_EMPLOYEE_IDS = QUERIES["review_mark_duplicate_employee_ids"]
REVIEW_DUPLICATE_EMPLOYEE_IDS = QUERIES["review_duplicate_employee_ids"]
REVIEW_IDENTITY_ROWS = QUERIES["review_identity_rows"]
REVIEW_APPLY_IDENTITIES = QUERIES["review_apply_identities"]
REVIEW_EMAIL_CHANGES = QUERIES["review_email_changes"]
REVIEW_LIKELY_RENAMES = QUERIES["review_likely_renames"]

__all__ = ["check_duplicate_employee_ids", "check_identities", "email_changes", "likely_renames"]

LIKELY_RENAMES_LISTED = 1_000


async def check_duplicate_employee_ids(
    conn: asyncpg.Connection, mapping: ColumnMapping, errors: ProblemLog
) -> None:
    """Reject later rows repeating an employee id, naming the first row, as the import does."""
    if EMPLOYEE_ID in mapping.fields:
        await conn.execute(REVIEW_MARK_DUPLICATE_EMPLOYEE_IDS)
        column = mapping.header_of(EMPLOYEE_ID)
        async for r in stream(conn, REVIEW_DUPLICATE_EMPLOYEE_IDS):
            message = (
                f"employee id {r['employee_id']} is already on row {r['duplicate_id_of']}:"
                " each person may appear only once in a file"
            )
            errors.add(Problem(r["row_number"], column, r["raw_employee_id"] or "", message))
    errors.end_source()


async def check_identities(
    conn: asyncpg.Connection,
    tenant: str,
    match_by: MatchKey,
    mode: Mode,
    mapping: ColumnMapping,
    errors: ProblemLog,
) -> None:
    """Who each valid row is (``core.identity``, as the import will when it starts): the rows it
    rejects become errors, and each other row's person is found at their address now."""
    await conn.execute(REVIEW_IDENTITY_ROWS)
    for rejected in await find_identities(conn, tenant, match_by, mode == Mode.ADD_ONLY):
        errors.add(Problem(rejected.row, mapping.header_of(rejected.field), rejected.value, rejected.message))
    errors.end_source()
    await conn.execute(REVIEW_APPLY_IDENTITIES)


async def email_changes(conn: asyncpg.Connection) -> int:
    """How many people the import would give another address (renames)."""
    count: int = await conn.fetchval(REVIEW_EMAIL_CHANGES)
    return count


def _advice(r: asyncpg.Record) -> str:
    advice = f"add a Previous email column with {r['person_email']} on this row"
    if r["person_employee_id"]:
        advice += f", or give it their Employee ID {r['person_employee_id']} and match people by employee id"
    return advice


async def likely_renames(
    conn: asyncpg.Connection, tenant: str, mode: Mode, mapping: ColumnMapping, warnings: ProblemLog
) -> dict[str, Any]:
    """The renames the file may mean without saying so: ``{"total", "pairs"}`` (the first
    ``LIKELY_RENAMES_LISTED``), each pair also a warning on its row's e-mail."""
    pairs: list[dict[str, Any]] = []
    total = 0
    if mode != Mode.ADD_ONLY:
        gone = "would be deactivated" if mode == Mode.SYNC else "is not in the file"
        column = mapping.header_of("email")
        async for r in stream(conn, REVIEW_LIKELY_RENAMES, tenant):
            total += 1
            name = f"{r['first_name']} {r['last_name']}"
            team = f", {r['person_team']}" if r["person_team"] else ""
            message = (
                f"{name} would be added as {r['email']} while {name} ({r['person_email']}{team}) {gone}:"
                f" if they are one person whose address changed, {_advice(r)}"
            )
            warnings.add(Problem(r["row_number"], column, r["email"], message))
            if len(pairs) < LIKELY_RENAMES_LISTED:
                pairs.append(
                    {
                        "row": r["row_number"],
                        "email": r["email"],
                        "name": name,
                        "person": {
                            "email": r["person_email"],
                            "employee_id": r["person_employee_id"],
                            "team": r["person_team"],
                        },
                        "fix": _advice(r),
                    }
                )
    warnings.end_source()
    return {"total": total, "pairs": pairs}
