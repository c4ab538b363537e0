"""Applying import rows to people: the work behind the row actor.

``upsert_rows`` applies a batch of one import's pending rows in one
transaction, with a fixed handful of set-based statements whatever the batch
size (this is what makes group commit pay). It is idempotent: rows are locked
and settled in the same transaction as the people's upserts and the outcome
counts, so a redelivered message finds its row settled and changes nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from core.columns import (
    COLUMNS_BY_NAME,
    DEACTIVATE_FLAG,
    PERSON_COLUMNS,
    PLAIN_COLUMNS,
    PRIMARY_TEAM,
    PRIMARY_TEAM_ID,
    SECONDARY_TEAM_IDS,
    SECONDARY_TEAMS,
    VALUE_COLUMNS,
)
from core.db import QUERIES
from core.errors import BulkImportError
from core.vocabulary import (
    DEFAULT_BLANK_CELLS,
    OUTCOMES,
    BlankCells,
    ColumnKind,
    Mode,
    PersonStatus,
    RowStatus,
)

FIND_TEAMS = QUERIES["find_teams"]
INSERT_TEAMS = QUERIES["insert_teams"]
LOCK_PEOPLE = QUERIES["lock_people"]
INSERT_PEOPLE = QUERIES["insert_people"]
UPDATE_PEOPLE = QUERIES["update_people"]
DEACTIVATE_ROW_PEOPLE = QUERIES["deactivate_row_people"]
SETTLE_ROWS = QUERIES["settle_rows"]
PLAN_CHECKS_GENERICALLY = QUERIES["plan_checks_generically"]
LOCK_IMPORT_ROWS = QUERIES["lock_import_rows"]
LOCK_IMPORT_ROW = QUERIES["lock_import_row"]
SETTLE_FAILED_ROW = QUERIES["settle_failed_row"]
COUNT_OUTCOMES = QUERIES["count_outcomes"]
CLAIM_FINALIZE = QUERIES["claim_finalize"]

log = structlog.get_logger(__name__)

# Must match the number of rows insert_import_counters creates per import.
COUNTER_SHARDS = 16

# Errors about the row's own data, which it will hit again however often it
# is retried: the row is recorded as failed with the reason instead of being
# retried. Their opposite, errors that are nobody's fault and never fail a
# row, is ``core.errors.is_transient``.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.CheckViolationError,
    asyncpg.NotNullViolationError,
    asyncpg.ForeignKeyViolationError,
)

# Plain values first, then the team ids: the parameter order of the statements
# that write people (core/sql/rows.sql).
_SQL_ORDER = (*PLAIN_COLUMNS, PRIMARY_TEAM_ID, SECONDARY_TEAM_IDS)


class RowConflict(BulkImportError):
    """Another transaction created the same person first; retrying settles it."""

    transient = True


@dataclass(frozen=True)
class Applied:
    """What applying a batch did: each applied row's outcome, and how many rows were left."""

    outcomes: dict[int, str]
    # The import's rows still pending as the batch's transaction saw them
    # after settling its own; None when unknown (nothing applied, or the rows
    # applied one by one). Rows that concurrent batches settle are not seen.
    remaining: int | None = None

    def may_be_last(self, in_flight_cap: int) -> bool:
        """Whether the import may have no pending row left once this batch committed.

        The rows the batch could not see settle are in concurrent batches,
        and those are among the rows in flight, at most ``in_flight_cap``
        (``IMPORT_MAX_IN_FLIGHT``; 0: no cap, so always maybe).
        """
        return self.remaining is None or in_flight_cap == 0 or self.remaining <= in_flight_cap


@dataclass
class _Change:
    """What one row does to its person."""

    row_number: int
    email: str
    outcome: str
    person_id: int | None
    values: dict[str, Any]
    deactivate: bool = False


def _team_names(data: dict[str, Any]) -> list[str]:
    names = [data[PRIMARY_TEAM]] if data.get(PRIMARY_TEAM) else []
    return names + list(data.get(SECONDARY_TEAMS) or [])


async def _team_ids(conn: asyncpg.Connection, tenant_id: str, names: list[str]) -> dict[str, int]:
    """Ids of the named teams, creating any missing one (existing spelling kept).

    The dispatcher creates an import's teams up front, so the insert is a
    fallback (a team named by a row added on resume, say).
    """
    if not names:
        return {}
    ids = [r["id"] for r in await conn.fetch(FIND_TEAMS, tenant_id, names)]
    missing = [name for name, team_id in zip(names, ids, strict=True) if team_id is None]
    if missing:
        await conn.execute(INSERT_TEAMS, tenant_id, missing)
        ids = [r["id"] for r in await conn.fetch(FIND_TEAMS, tenant_id, names)]
    return dict(zip(names, ids, strict=True))


async def ensure_teams(conn: asyncpg.Connection, tenant_id: str, names: list[str]) -> dict[str, int]:
    """Ids of the named teams of the tenant, creating the missing ones (SCIM's POST /Groups)."""
    return await _team_ids(conn, tenant_id, names)


def desired_person(
    data: dict[str, Any],
    existing: asyncpg.Record | None,
    team_ids: dict[str, int],
    blank_cells: str = DEFAULT_BLANK_CELLS,
) -> dict[str, Any]:
    """The person's columns after this row: the file's values over what is stored.

    A column absent from the file leaves the stored value alone. A blank cell in
    a present column clears it (role back to learner, language to the tenant's)
    when ``blank_cells`` is ``clear``, and leaves it alone when it is ``keep``;
    a new person starts from the columns' defaults either way. An identifier
    (the Employee ID) is only ever given: a blank cell never clears it (the
    identities step has rejected a row whose id is another than the stored one).
    """
    person: dict[str, Any] = (
        {column: existing[column] for column in PERSON_COLUMNS}
        if existing is not None
        else dict(zip(PERSON_COLUMNS, (c.default for c in VALUE_COLUMNS), strict=True))
        | {SECONDARY_TEAM_IDS: []}
    )
    # Under keep a blank cell is as good as an absent column: nothing to write.
    given = {
        field: value
        for field, value in data.items()
        if blank_cells != BlankCells.KEEP or value not in (None, "", [])
    }
    for field in PLAIN_COLUMNS:
        if field in given:
            if COLUMNS_BY_NAME[field].kind == ColumnKind.ID:
                person[field] = given[field] or person[field]
                continue
            default = COLUMNS_BY_NAME[field].default
            person[field] = given[field] if default is None else (given[field] or default)
    if PRIMARY_TEAM in given:
        primary = given[PRIMARY_TEAM]
        person[PRIMARY_TEAM_ID] = team_ids[primary] if primary else None
    if SECONDARY_TEAMS in given:
        primary_id = person[PRIMARY_TEAM_ID]
        # The primary team may be spelled differently among the secondary ones.
        person[SECONDARY_TEAM_IDS] = list(
            dict.fromkeys(team_ids[n] for n in given[SECONDARY_TEAMS] if team_ids[n] != primary_id)
        )
    return person


def is_unchanged(existing: asyncpg.Record, person: dict[str, Any], *, active: bool = True) -> bool:
    """True when applying ``person`` would change nothing (status included: ``active`` is the one wanted)."""
    if (existing["status"] == PersonStatus.ACTIVE) != active:
        return False
    return all(
        sorted(existing[c]) == sorted(person[c]) if c == SECONDARY_TEAM_IDS else existing[c] == person[c]
        for c in PERSON_COLUMNS
    )


def _columns(changes: list[_Change], key: str) -> list[Any]:
    if key == SECONDARY_TEAM_IDS:
        return ["{" + ",".join(map(str, c.values[key])) + "}" for c in changes]
    return [c.values[key] for c in changes]


def _value_arrays(changes: list[_Change]) -> list[list[Any]]:
    # The order of insert_people's and update_people's unnest() arguments.
    return [_columns(changes, key) for key in _SQL_ORDER]


async def _plan(
    conn: asyncpg.Connection, import_id: int, imp: asyncpg.Record, rows: Sequence[asyncpg.Record]
) -> list[_Change]:
    """Decide each row's outcome against the locked people (``imp``: the import's options)."""
    tenant_id, mode = imp["tenant_id"], imp["mode"]
    emails = sorted(row["email"] for row in rows)
    existing = {p["email"]: p for p in await conn.fetch(LOCK_PEOPLE, tenant_id, emails)}
    applying = [r for r in rows if not (mode == Mode.ADD_ONLY and r["email"] in existing)]
    names = sorted({name for r in applying for name in _team_names(r["data"])})
    team_ids = await _team_ids(conn, tenant_id, names)
    changes = []
    for row in rows:
        email, current = row["email"], existing.get(row["email"])
        if current is not None and mode == Mode.ADD_ONLY:
            changes.append(_Change(row["row_number"], email, RowStatus.SKIPPED, current["id"], {}))
            continue
        values = desired_person(row["data"], current, team_ids, imp["blank_cells"])
        deactivate = row["data"].get(DEACTIVATE_FLAG) is False
        if current is None:
            outcome = RowStatus.CREATED
        # A person the identities step renamed (it wrote this import on them: no other path writes
        # it before their row) is updated, their address, whatever else the row says.
        elif current["last_import_id"] != import_id and is_unchanged(current, values, active=not deactivate):
            outcome = RowStatus.UNCHANGED
        else:
            outcome = RowStatus.UPDATED
        person_id = current["id"] if current is not None else None
        changes.append(_Change(row["row_number"], email, outcome, person_id, values, deactivate))
    return changes


async def _write(conn: asyncpg.Connection, tenant_id: str, import_id: int, changes: list[_Change]) -> None:
    creates = sorted((c for c in changes if c.outcome == RowStatus.CREATED), key=lambda c: c.email)
    if creates:
        inserted = {
            r["email"]: r["id"]
            for r in await conn.fetch(
                INSERT_PEOPLE,
                tenant_id,
                import_id,
                [c.email for c in creates],
                *_value_arrays(creates),
            )
        }
        if len(inserted) != len(creates):
            raise RowConflict("a person of this batch was created concurrently; retrying")
        for change in creates:
            change.person_id = inserted[change.email]
    updates = [c for c in changes if c.outcome == RowStatus.UPDATED]
    if updates:
        await conn.execute(
            UPDATE_PEOPLE,
            tenant_id,
            import_id,
            [c.person_id for c in updates],
            *_value_arrays(updates),
        )
    deactivations = [
        c for c in changes if c.deactivate and c.outcome in (RowStatus.CREATED, RowStatus.UPDATED)
    ]
    if deactivations:
        # After the write (which leaves everyone it wrote active); recorded for undo
        # like a sweep, except for the people this import created (undo deactivates them anyway).
        await conn.execute(
            DEACTIVATE_ROW_PEOPLE,
            tenant_id,
            import_id,
            [c.person_id for c in deactivations],
            [c.outcome == RowStatus.UPDATED for c in deactivations],
        )


def _shard() -> int:
    # Any shard will do: spreading batches over shards keeps them off one hot row.
    return random.randrange(COUNTER_SHARDS)


async def _settle(conn: asyncpg.Connection, import_id: int, changes: list[_Change]) -> int:
    counts = Counter(c.outcome for c in changes)
    remaining: int = await conn.fetchval(
        SETTLE_ROWS,
        import_id,
        [c.row_number for c in changes],
        [c.outcome for c in changes],
        [c.person_id for c in changes],
        _shard(),
        *(counts[o] for o in OUTCOMES),
    )
    return remaining


async def upsert_rows(conn: asyncpg.Connection, import_id: int, row_numbers: Sequence[int]) -> Applied:
    """Apply pending rows of one import in one transaction; return their outcomes.

    Rows already settled (a redelivery) and rows of an import that is no longer
    running (cancelled) are left out of the result: there was nothing to do.
    """
    async with conn.transaction():
        await conn.execute(PLAN_CHECKS_GENERICALLY)
        rows = await conn.fetch(LOCK_IMPORT_ROWS, import_id, sorted(row_numbers))
        if not rows or rows[0]["row_number"] is None:  # no such import, not running, or nothing pending
            return Applied({})
        imp = rows[0]
        changes = await _plan(conn, import_id, imp, rows)
        await _write(conn, imp["tenant_id"], import_id, changes)
        remaining = await _settle(conn, import_id, changes)
    return Applied({c.row_number: c.outcome for c in changes}, remaining)


async def fail_row(conn: asyncpg.Connection, import_id: int, row_number: int, reason: str) -> bool:
    """Record a row that cannot succeed as failed with ``reason``; False if it had settled."""
    async with conn.transaction():
        status = await conn.fetchval(LOCK_IMPORT_ROW, import_id, row_number)
        if status != RowStatus.PENDING:
            return False
        errors = [{"column": None, "value": None, "message": reason}]
        await conn.execute(SETTLE_FAILED_ROW, import_id, row_number, errors)
        counts = Counter({RowStatus.FAILED: 1})
        await conn.execute(COUNT_OUTCOMES, import_id, _shard(), *(counts[o] for o in OUTCOMES))
    return True


async def process_rows(conn: asyncpg.Connection, import_id: int, row_numbers: Sequence[int]) -> Applied:
    """Apply a batch of rows; a row the database refuses is recorded as failed.

    When the batch hits a permanent error, each row is applied on its own so
    that only the offending row fails. Transient errors propagate, to be
    retried by each row's message.
    """
    try:
        return await upsert_rows(conn, import_id, row_numbers)
    except PERMANENT_ERRORS:
        pass
    outcomes: dict[int, str] = {}
    for row_number in row_numbers:
        try:
            outcomes |= (await upsert_rows(conn, import_id, [row_number])).outcomes
        except PERMANENT_ERRORS as exc:
            reason = f"the database refused this row: {exc}"
            log.warning("row.failed", import_id=import_id, row=row_number, reason=reason)
            if await fail_row(conn, import_id, row_number, reason):
                outcomes[row_number] = RowStatus.FAILED
    return Applied(outcomes)


async def claim_finalize(conn: asyncpg.Connection, import_id: int) -> bool:
    """Move a running import whose rows have all settled to ``finalizing``; True if this call did."""
    return await conn.fetchval(CLAIM_FINALIZE, import_id) is not None
