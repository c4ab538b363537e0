"""Upserting one import row: the work behind the row actor.

``process_row`` is idempotent: the row is locked and settled in the same
transaction as the person's upsert and the outcome count, so a redelivered
message finds the row settled and changes nothing.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from worker.db import QUERIES
from worker.errors import BulkImportError

log = structlog.get_logger(__name__)

# Must match the number of rows insert_import_counters creates per import.
COUNTER_SHARDS = 16

# Errors that the same row will hit again however often it is retried: the
# row is recorded as failed with the reason instead of being retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.ForeignKeyViolationError,
)


class RowConflict(BulkImportError):
    """Another transaction created the same person first; retrying settles it."""


_PERSON_COLUMNS = (
    "first_name",
    "last_name",
    "job_title",
    "role",
    "language",
    "location",
    "primary_team_id",
    "secondary_team_ids",
)


async def _team_ids(conn: asyncpg.Connection, tenant_id: str, names: list[str]) -> list[int]:
    """Ids of the named teams, creating the missing ones (existing spelling kept)."""
    if not names:
        return []
    ids: list[int | None] = [r["id"] for r in await conn.fetch(QUERIES["find_teams"], tenant_id, names)]
    missing = [name for name, team_id in zip(names, ids, strict=True) if team_id is None]
    if missing:
        await conn.execute(QUERIES["insert_teams"], tenant_id, missing)
        ids = [r["id"] for r in await conn.fetch(QUERIES["find_teams"], tenant_id, names)]
    return [team_id for team_id in ids if team_id is not None]


async def _desired_person(
    conn: asyncpg.Connection, tenant_id: str, data: dict[str, Any], existing: asyncpg.Record | None
) -> dict[str, Any]:
    """The person's columns after this row: the file's values over what is stored.

    A column absent from the file leaves the stored value alone; a blank cell in
    a present column clears it (role back to learner, language to the tenant's).
    """
    person: dict[str, Any] = (
        {column: existing[column] for column in _PERSON_COLUMNS}
        if existing is not None
        else dict.fromkeys(_PERSON_COLUMNS) | {"role": "learner", "secondary_team_ids": []}
    )
    for field in ("first_name", "last_name", "job_title", "role", "language", "location"):
        if field in data:
            person[field] = data[field] if field != "role" else (data[field] or "learner")
    if "primary_team" in data or "secondary_teams" in data:
        primary = [data["primary_team"]] if data.get("primary_team") else []
        secondary = list(data.get("secondary_teams") or [])
        ids = await _team_ids(conn, tenant_id, primary + secondary)
        if "primary_team" in data:
            person["primary_team_id"] = ids[0] if primary else None
        if "secondary_teams" in data:
            secondary_ids = ids[len(primary) :]
            primary_id = person["primary_team_id"]
            # The primary team may be spelled differently among the secondary ones.
            person["secondary_team_ids"] = list(dict.fromkeys(i for i in secondary_ids if i != primary_id))
    return person


def _unchanged(existing: asyncpg.Record, person: dict[str, Any]) -> bool:
    if existing["status"] != "active":
        return False
    for column in _PERSON_COLUMNS:
        if column == "secondary_team_ids":
            if sorted(existing[column]) != sorted(person[column]):
                return False
        elif existing[column] != person[column]:
            return False
    return True


async def upsert_person(
    conn: asyncpg.Connection,
    tenant_id: str,
    mode: str,
    import_id: int,
    email: str,
    data: dict[str, Any],
) -> tuple[str, int]:
    """Create, update or leave one person; return (outcome, person id).

    Must run inside a transaction: the person is locked until it commits.
    """
    existing = await conn.fetchrow(QUERIES["lock_person"], tenant_id, email)
    if existing is not None and mode == "add-only":
        return "skipped", existing["id"]
    person = await _desired_person(conn, tenant_id, data, existing)
    values = [person[column] for column in _PERSON_COLUMNS]
    if existing is None:
        person_id = await conn.fetchval(QUERIES["insert_person"], tenant_id, email, *values, import_id)
        if person_id is None:
            raise RowConflict(f"{email} was created concurrently; retrying")
        return "created", person_id
    if _unchanged(existing, person):
        return "unchanged", existing["id"]
    await conn.execute(QUERIES["update_person"], tenant_id, existing["id"], *values, import_id)
    return "updated", existing["id"]


async def _settle(
    conn: asyncpg.Connection,
    import_id: int,
    row_number: int,
    outcome: str,
    person_id: int | None,
    errors: list[dict[str, Any]] | None,
) -> None:
    await conn.execute(QUERIES["settle_row"], import_id, row_number, outcome, person_id, errors)
    await conn.execute(QUERIES["count_outcome"], import_id, row_number % COUNTER_SHARDS, outcome)


async def upsert_row(conn: asyncpg.Connection, import_id: int, row_number: int) -> str | None:
    """Apply one pending row; return its outcome, or None when there was nothing to do.

    Nothing to do: the row already settled (a redelivery), or its import is no
    longer running (cancelled).
    """
    async with conn.transaction():
        row = await conn.fetchrow(QUERIES["lock_import_row"], import_id, row_number)
        if row is None or row["status"] != "pending" or row["state"] != "running":
            return None
        outcome, person_id = await upsert_person(
            conn, row["tenant_id"], row["mode"], import_id, row["email"], row["data"]
        )
        await _settle(conn, import_id, row_number, outcome, person_id, None)
    return outcome


async def fail_row(conn: asyncpg.Connection, import_id: int, row_number: int, reason: str) -> bool:
    """Record a row that cannot succeed as failed with ``reason``; False if it had settled."""
    async with conn.transaction():
        row = await conn.fetchrow(QUERIES["lock_import_row"], import_id, row_number)
        if row is None or row["status"] != "pending":
            return False
        errors = [{"column": None, "value": None, "message": reason}]
        await _settle(conn, import_id, row_number, "failed", None, errors)
    return True


async def process_row(conn: asyncpg.Connection, import_id: int, row_number: int) -> bool:
    """Settle one row, then try to claim its import's finalizing step.

    Returns True when this call moved the import to ``finalizing``: the caller
    then sends the finalize message. Transient errors propagate (to be
    retried); permanent ones settle the row as failed with the reason.
    """
    try:
        outcome = await upsert_row(conn, import_id, row_number)
    except PERMANENT_ERRORS as exc:
        reason = f"the database refused this row: {exc}"
        log.warning("row.failed", reason=reason)
        outcome = "failed" if await fail_row(conn, import_id, row_number, reason) else None
    if outcome is None:
        return False
    log.debug("row.settled", outcome=outcome)
    return await claim_finalize(conn, import_id)


async def claim_finalize(conn: asyncpg.Connection, import_id: int) -> bool:
    """Move a running import whose rows have all settled to ``finalizing``; True if this call did."""
    return await conn.fetchval(QUERIES["claim_finalize"], import_id) is not None
