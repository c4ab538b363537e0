"""Undoing a finished import: its preview, and the undo's batches on the workers.

An undo is an import of mode ``undo`` (``imports.undoes`` names the import
it undoes) with no rows of its own: started like any import (one per tenant
at a time), its dispatch finds nothing pending and claims the finalizing
step at once, and ``finalize_import`` runs :func:`run_undo`. That goes
through the phases of ``core.vocabulary.UndoPhase`` in set-based batches
of ``UNDO_BATCH_SIZE`` people (the addresses the import changed in one
batch, so that a swap comes back whole), each batch one transaction that locks the
undo, applies the page and advances its progress (``undos``): a redelivered
message, a crash or a cancel leaves it after the last committed batch, and
``resume`` or housekeeping's stall check goes on from there. What could not
be restored is recorded as failed rows of the undo (its errors file).

The preview reads the same pages with the same decisions (``core.undo_plan``)
in one read-only transaction, and writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from core.db import QUERIES
from core.errors import ImportNotFound, InvalidState
from core.undo_plan import (
    REPORT_HEADER,
    Line,
    Plan,
    Tally,
    plan_changed,
    plan_created,
    plan_emails,
    plan_purged,
    team_ids_to_name,
)
from core.vocabulary import UNDO_COUNTS, ImportState, Mode, Step, UndoPhase

TEAM_NAMES = QUERIES["team_names"]
UNDO_CREATED_PAGE = QUERIES["undo_created_page"]
UNDO_PURGED_PAGE = QUERIES["undo_purged_page"]
UNDO_CHANGED_PAGE = QUERIES["undo_changed_page"]
UNDO_EMAIL_MOVES = QUERIES["undo_email_moves"]
LOCK_UNDO_EMAIL_PEOPLE = QUERIES["lock_undo_email_people"]
UNDO_VACATE_EMAILS = QUERIES["undo_vacate_emails"]
RESTORE_UNDONE_EMAILS = QUERIES["restore_undone_emails"]
DEACTIVATE_UNDONE_PEOPLE = QUERIES["deactivate_undone_people"]
CANCEL_UNDONE_INVITES = QUERIES["cancel_undone_invites"]
RESTORE_UNDONE_PEOPLE = QUERIES["restore_undone_people"]
INSERT_UNDO_REPORT = QUERIES["insert_undo_report"]
RESTORE_TEAM_MANAGERS = QUERIES["restore_team_managers"]
UNDO_EMPTY_TEAMS = QUERIES["undo_empty_teams"]
LOCK_UNDO = QUERIES["lock_undo"]
LOCK_UNDO_CREATED_PEOPLE = QUERIES["lock_undo_created_people"]
LOCK_UNDO_CHANGED_PEOPLE = QUERIES["lock_undo_changed_people"]
REACTIVATE_STILL_SWEPT = QUERIES["reactivate_still_swept"]
FINISH_IMPORT = QUERIES["finish_import"]
ADVANCE_UNDO = QUERIES["advance_undo"]
READ_UNDO_COUNTS = QUERIES["undo_counts"]
UNDONE_IMPORT = QUERIES["undone_import"]
COUNT_STILL_SWEPT = QUERIES["count_still_swept"]
TEAMS_CREATED_BY_IMPORT = QUERIES["teams_created_by_import"]
PURGE_IMPORT_CHANGES = QUERIES["purge_import_changes"]

log = structlog.get_logger(__name__)

# One message of the undo works this long at most, then hands over to the
# next (finalize_import again): short enough for a graceful stop and for the
# actor's time limit, long enough that the hand-overs cost nothing.
MESSAGE_BUDGET_S = 5.0
TEAM_LEFT = "created by the import; nobody belongs to it any more: left in place (teams are never deleted)"


def check_undoable(imp: Mapping[str, Any] | None, import_id: int, tenant: str | None = None) -> None:
    """Refuse, in the user's words, an import that cannot be undone."""
    if imp is None or (tenant is not None and imp["tenant_id"] != tenant):
        raise ImportNotFound(f"no import {import_id}" + (f" for tenant {tenant!r}" if tenant else ""))
    if imp["mode"] == Mode.UNDO:
        raise InvalidState(
            f"import {import_id} is itself an undo (of import {imp['undoes']}): an undo cannot be"
            " undone; import the right file again instead"
        )
    if imp["state"] != ImportState.DONE:
        raise InvalidState(
            f"import {import_id} is {imp['state']}: only a finished (done) import can be undone"
        )


def expired(finished_at: datetime | None, retention_days: int, at: datetime | None = None) -> bool:
    """Whether an import ended before the retention window of its replaced values, as of ``at`` (now)."""
    limit = (at or datetime.now(UTC)) - timedelta(days=retention_days)
    return finished_at is not None and finished_at < limit


async def _team_names(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> dict[int, str]:
    ids = team_ids_to_name(rows)
    if not ids:
        return {}
    return {r["id"]: r["name"] for r in await conn.fetch(TEAM_NAMES, sorted(ids))}


async def _page(
    conn: asyncpg.Connection, phase: str, import_id: int, after: int, size: int, retention_days: int | None
) -> tuple[Plan, int | None]:
    """Plan one page of a phase; the key to go on after, or None when the phase is over.

    ``retention_days`` None: the import's replaced values are still kept.
    """
    if phase == UndoPhase.CREATED:
        rows = await conn.fetch(UNDO_CREATED_PAGE, import_id, after, size)
        return plan_created(rows, import_id), rows[-1]["row_number"] if rows else None
    if retention_days is not None:
        rows = await conn.fetch(UNDO_PURGED_PAGE, import_id, after, size)
        return plan_purged(rows, retention_days), rows[-1]["row_number"] if rows else None
    rows = await conn.fetch(UNDO_CHANGED_PAGE, import_id, after, size)
    plan = plan_changed(rows, await _team_names(conn, rows))
    return plan, rows[-1]["person_id"] if rows else None


async def _apply(conn: asyncpg.Connection, plan: Plan, undo_id: int, tenant: str) -> None:
    if plan.deactivate:
        await conn.execute(DEACTIVATE_UNDONE_PEOPLE, plan.deactivate, undo_id, tenant)
    if plan.cancel_invites:
        await conn.execute(CANCEL_UNDONE_INVITES, plan.cancel_invites)
    if plan.restore_ids:
        await conn.execute(RESTORE_UNDONE_PEOPLE, plan.restore_ids, plan.restore_values, tenant)
    if plan.email_ids:
        # All in this one statement pair: addresses taken back from each other (a swap) need the
        # placeholder first, as when the import changed them (core.identity).
        await conn.execute(UNDO_VACATE_EMAILS, plan.email_ids, plan.emails, tenant)
        await conn.execute(RESTORE_UNDONE_EMAILS, plan.email_ids, plan.emails, tenant)


async def _report(conn: asyncpg.Connection, undo_id: int, reported: int, tally: Tally) -> None:
    if not tally.lines:
        return
    await conn.execute(
        INSERT_UNDO_REPORT,
        undo_id,
        list(range(reported + 1, reported + 1 + len(tally.lines))),
        [line.email for line in tally.lines],
        [orjson.dumps(line.raw()).decode() for line in tally.lines],
        [orjson.dumps([{"column": None, "message": line.reason}]).decode() for line in tally.lines],
    )


async def _teams(conn: asyncpg.Connection, import_id: int, tenant: str) -> Tally:
    """The teams' managers after the people's undo, and the teams left with nobody."""
    await conn.execute(RESTORE_TEAM_MANAGERS, import_id, tenant)
    tally = Tally()
    for team in await conn.fetch(UNDO_EMPTY_TEAMS, import_id, tenant):
        tally.counts["teams_left"] += 1
        tally.lines.append(Line("", None, "Team", "", team["name"], team["name"], TEAM_LEFT))
    return tally


async def undo_batch(
    conn: asyncpg.Connection, undo_id: int, batch_size: int, retention_days: int
) -> Step | None:
    """Apply the undo's next batch in one transaction: ``Step.MORE``, ``Step.DONE``, or None (not running)."""
    async with conn.transaction():
        undo = await conn.fetchrow(LOCK_UNDO, undo_id)
        if undo is None or undo["state"] != ImportState.FINALIZING:
            return None
        import_id, tenant, phase = undo["undoes"], undo["tenant_id"], undo["phase"]
        # As of the undo's request, so that every batch of it pages the same way.
        purged = (
            retention_days
            if expired(undo["undone_finished_at"], retention_days, undo["created_at"])
            else None
        )
        next_phase, after = phase, undo["after_key"]
        if phase == UndoPhase.EMAILS:
            # One batch for every address, whatever their number: a swap or a chain split over
            # two batches would find its addresses taken (core.identity).
            await conn.fetch(LOCK_UNDO_EMAIL_PEOPLE, import_id)
            plan = plan_emails(await conn.fetch(UNDO_EMAIL_MOVES, import_id, tenant))
            await _apply(conn, plan, undo_id, tenant)
            tally, next_phase, after = plan.tally, UndoPhase.CHANGED, 0
        elif phase in (UndoPhase.CREATED, UndoPhase.CHANGED):
            if phase == UndoPhase.CREATED:
                await conn.fetch(LOCK_UNDO_CREATED_PEOPLE, import_id, after, batch_size)
            elif purged is None:
                await conn.fetch(LOCK_UNDO_CHANGED_PEOPLE, import_id, after, batch_size)
            plan, last = await _page(conn, phase, import_id, after, batch_size, purged)
            await _apply(conn, plan, undo_id, tenant)
            tally = plan.tally
            if last is not None:
                after = last
            else:
                next_phase, after = (UndoPhase.EMAILS if phase == UndoPhase.CREATED else UndoPhase.TEAMS), 0
                if phase == UndoPhase.CHANGED and purged is not None:
                    status = await conn.execute(REACTIVATE_STILL_SWEPT, import_id, tenant)
                    tally.counts["reactivated"] += int(status.split()[-1])
        else:
            tally = await _teams(conn, import_id, tenant)
            next_phase = UndoPhase.FINISHED
            await conn.execute(FINISH_IMPORT, undo_id, 0, 0, None)
        await _report(conn, undo_id, undo["reported"], tally)
        await conn.execute(ADVANCE_UNDO, undo_id, next_phase, after, *tally.ordered(), len(tally.lines))
    log.debug("undo.batch", undo_id=undo_id, phase=phase, **dict(tally.counts))
    if next_phase == UndoPhase.FINISHED:
        log.info("undo.done", undo_id=undo_id, undoes=import_id)
        return Step.DONE
    return Step.MORE


async def run_undo(
    conn: asyncpg.Connection,
    undo_id: int,
    batch_size: int,
    retention_days: int,
    budget_s: float = MESSAGE_BUDGET_S,
) -> Step | None:
    """Batches of the undo for up to ``budget_s``: ``Step.MORE`` (send again), ``Step.DONE``, or None.

    None: the undo is not running.
    """
    deadline = time.monotonic() + budget_s
    while True:
        step = await undo_batch(conn, undo_id, batch_size, retention_days)
        if step != Step.MORE or time.monotonic() >= deadline:
            return step


async def undo_counts(conn: asyncpg.Connection | asyncpg.Pool, undo_id: int) -> dict[str, Any] | None:
    """An undo's phase and counts (``UNDO_COUNTS``, and ``not_restored``: its report's lines).

    None for an import that is no undo.
    """
    row = await conn.fetchrow(READ_UNDO_COUNTS, undo_id)
    return dict(row) if row is not None else None


async def preview_undo(
    conn: asyncpg.Connection,
    import_id: int,
    retention_days: int,
    batch_size: int,
    *,
    tenant: str | None = None,
    max_lines: int = 1_000,
) -> dict[str, Any]:
    """What undoing the import would do now, read-only: counts, and who would not be restored and why.

    With ``tenant``, an import of another tenant is not found. ``not_restored``
    holds the first ``max_lines`` lines; ``not_restored_total`` counts them all.
    """
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        imp = await conn.fetchrow(UNDONE_IMPORT, import_id)
        check_undoable(imp, import_id, tenant)
        tenant = imp["tenant_id"]
        purged = retention_days if expired(imp["finished_at"], retention_days) else None
        total = Tally()
        shown: list[dict[str, Any]] = []
        lines = 0
        for phase in (UndoPhase.CREATED, UndoPhase.EMAILS, UndoPhase.CHANGED):
            after: int | None = 0
            while after is not None:
                if phase == UndoPhase.EMAILS:
                    plan, after = plan_emails(await conn.fetch(UNDO_EMAIL_MOVES, import_id, tenant)), None
                else:
                    plan, after = await _page(conn, phase, import_id, after, batch_size, purged)
                total.counts.update(plan.tally.counts)
                lines += len(plan.tally.lines)
                shown.extend(line.as_dict() for line in plan.tally.lines[: max_lines - len(shown)])
        if purged is not None:
            total.counts["reactivated"] += await conn.fetchval(COUNT_STILL_SWEPT, import_id, tenant)
        teams = [r["name"] for r in await conn.fetch(TEAMS_CREATED_BY_IMPORT, import_id, tenant)]
    return {
        "import": import_id,
        "tenant": tenant,
        "dry_run": True,
        "retention_days": retention_days,
        "values_purged": purged is not None,
        **{name: total.counts[name] for name in UNDO_COUNTS if name != "teams_left"},
        "teams_created": teams,
        "not_restored": shown,
        "not_restored_total": lines,
        "report_columns": list(REPORT_HEADER),
    }


async def purge_old_changes(conn: asyncpg.Connection, retention_days: int) -> int:
    """Forget the replaced values of imports that ended over ``retention_days`` ago (housekeeping)."""
    purged: int = await conn.fetchval(PURGE_IMPORT_CHANGES, retention_days)
    return purged
