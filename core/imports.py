"""An import's life after its rows are recorded: start, dispatch, finalize, sweep, end.

Plain async functions over a connection; the actors in ``worker.actors`` call
them and send whatever message comes next. Every step is safe to repeat: each
checks the import's state under a row lock before acting.

    queued ──start──▶ running ──all rows settled──▶ finalizing ──▶ done
                         │                             │ (sync: sweep over the limit)
                         └────────── cancel ───────────┴──▶ blocked ──approve──▶ finalizing

An undo (mode ``undo``) has no rows: it reaches finalizing at once, and its
work runs there in batches (``core.undo``). Rows settled as unchanged when
the file was recorded (``core.intake.submit``) are compared with their
person's version once more when the import is finalized: a person written
since sends their row back to pending, and the import back to running.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import structlog

from core import identity, invites
from core.db import QUERIES
from core.rows import claim_finalize
from core.vocabulary import ImportState, Mode, Step
from core.webhooks import events

IMPORT_TENANT = QUERIES["import_tenant"]
OLDEST_QUEUED_IMPORT = QUERIES["oldest_queued_import"]
START_IMPORT = QUERIES["start_import"]
ROWS_IN_FLIGHT = QUERIES["rows_in_flight"]
IMPORT_IDLE_SECONDS = QUERIES["import_idle_seconds"]
CREATE_IMPORT_TEAMS = QUERIES["create_import_teams"]
PENDING_ROWS = QUERIES["pending_rows"]
IMPORT_ROWS_APPLIED = QUERIES["import_rows_applied"]
ANALYZE_IMPORT_TABLES = QUERIES["analyze_import_tables"]
LOCK_IMPORT = QUERIES["lock_import"]
RELEASE_DEMOTED_MANAGERS = QUERIES["release_demoted_managers"]
ASSIGN_TEAM_MANAGERS = QUERIES["assign_team_managers"]
FINISH_IMPORT = QUERIES["finish_import"]
SWEEP_CANDIDATES = QUERIES["sweep_candidates"]
BLOCK_IMPORT = QUERIES["block_import"]
DEACTIVATE_MISSING_PEOPLE = QUERIES["deactivate_missing_people"]
FAIL_IMPORT = QUERIES["fail_import"]
CANCEL_IMPORT = QUERIES["cancel_import"]
APPROVE_MASS_DEACTIVATION = QUERIES["approve_mass_deactivation"]
REOPEN_MOVED_UNCHANGED_ROWS = QUERIES["reopen_moved_unchanged_rows"]

log = structlog.get_logger(__name__)

DISPATCH_BATCH = 1_000
# An import this large changes its tables' statistics enough to matter: it is
# analyzed when recorded (core.intake.submit) and before it is finalized.
ANALYZE_AFTER_ROWS = 1_000
# Rows in flight are counted among this many times the cap below the last row
# sent: the workers take rows in the order sent, so what is in flight lies
# there, and the count stays a bounded read at any import size.
IN_FLIGHT_WINDOW = 2
SendRows = Callable[[int, list[int]], Awaitable[None]]
QueueRoom = Callable[[], Awaitable[int]]


async def tenant_of_import(conn: asyncpg.Connection | asyncpg.Pool, import_id: int) -> str | None:
    """The tenant an import belongs to, or None when there is no such import."""
    tenant: str | None = await conn.fetchval(IMPORT_TENANT, import_id)
    return tenant


async def start_next_import(conn: asyncpg.Connection, tenant_id: str) -> int | None:
    """Start the tenant's oldest queued import if none of its imports is active.

    Returns the id of the import started now, or None. Two callers racing for
    one tenant cannot both win: a partial unique index allows one active import.
    """
    import_id = await conn.fetchval(OLDEST_QUEUED_IMPORT, tenant_id)
    if import_id is None:
        return None
    try:
        started: int | None = await conn.fetchval(START_IMPORT, import_id)
    except asyncpg.UniqueViolationError:
        return None
    if started is not None:
        log.info("import.started", import_id=started, tenant=tenant_id)
    return started


@dataclass(frozen=True)
class Dispatched:
    """What one dispatch call did.

    ``resume_after`` is set when the call stopped before the last pending row:
    the rows after that row number are still to be sent, by a later call.
    ``at_cap``: it stopped because the import had ``cap`` rows in flight (not
    because the row queue was full).
    """

    sent: int
    claimed: bool
    resume_after: int | None = None
    at_cap: bool = False


async def rows_in_flight(conn: asyncpg.Connection, import_id: int, after: int, window: int) -> int:
    """Rows of the import sent up to row ``after`` and not yet settled.

    Counted among the ``window`` rows up to ``after`` (see the statement).
    """
    if after == 0:
        return 0
    count: int = await conn.fetchval(ROWS_IN_FLIGHT, import_id, after, window)
    return count


async def idle_seconds(conn: asyncpg.Connection, import_id: int) -> float:
    """Seconds since a row of the import last settled (or since it started)."""
    idle: float | None = await conn.fetchval(IMPORT_IDLE_SECONDS, import_id)
    return idle or 0.0


async def dispatch_pending_rows(
    conn: asyncpg.Connection,
    import_id: int,
    send_rows: SendRows,
    *,
    after: int = 0,
    room: QueueRoom | None = None,
    cap: int | None = None,
) -> Dispatched:
    """Send a row message for every pending row after row ``after``, within bounds.

    The first call (``after`` 0) also resolves who its rows are and applies
    its renames (``core.identity``, once per import), then creates the
    import's teams. Pages
    through row numbers with short statements, so memory stays flat for any
    number of rows and no transaction stays open meanwhile. Two bounds stop
    the call early, and it then returns where to go on from:

    - ``cap``: the import may have at most this many rows sent and not yet
      settled. The rows up to ``after`` still pending are in flight (counted
      among the last 2 × ``cap`` rows; a call from ``after`` 0, the first or
      a resume, counts none), so this call sends at most ``cap`` minus those:
      one import never fills the shared row queue, and another tenant's rows
      find at most about ``cap`` of its rows ahead of them.
    - ``room``: how many more messages the row queue may take, asked before
      each page: Redis holds a bounded backlog whatever the imports' sizes.

    ``claimed``: nothing at all was pending, and this call claimed the
    finalizing step.
    """
    if after == 0:
        # Before any row is sent: the batches find each renamed person at their row's address.
        await identity.resolve_import(conn, import_id)
        await conn.execute(CREATE_IMPORT_TEAMS, import_id, Mode.ADD_ONLY)
    allowed = None
    if cap is not None:
        allowed = cap - await rows_in_flight(conn, import_id, after, IN_FLIGHT_WINDOW * cap)
    sent, start = 0, after
    while True:
        limit = DISPATCH_BATCH if allowed is None else min(DISPATCH_BATCH, allowed - sent)
        if limit <= 0:
            # No continuation when every row is sent: the rows settling end the import.
            if not await conn.fetch(PENDING_ROWS, import_id, after, 1):
                break
            log.debug("import.dispatch_at_cap", import_id=import_id, rows=sent, after=after)
            return Dispatched(sent, False, after, at_cap=True)
        if room is not None:
            limit = min(limit, await room())
            if limit <= 0:
                log.info("import.dispatch_paused", import_id=import_id, rows=sent, after=after)
                return Dispatched(sent, False, after)
        page = [r["row_number"] for r in await conn.fetch(PENDING_ROWS, import_id, after, limit)]
        if not page:
            break
        await send_rows(import_id, page)
        sent, after = sent + len(page), page[-1]
    claimed = sent == 0 and start == 0 and await claim_finalize(conn, import_id)
    log.info("import.dispatched", import_id=import_id, rows=sent)
    return Dispatched(sent, claimed)


async def finalize_import(conn: asyncpg.Connection, import_id: int) -> Step | None:
    """Resolve managers; return ``Step.SWEEP`` when the sweeper must run next, ``DONE``, or None.

    None: the import is not finalizing (already done, cancelled, or unknown).
    ``Step.ROWS``: rows settled as unchanged when the file was recorded have
    a person written since; they are pending again and the import running,
    and their messages are to be sent (a dispatch from the start).
    Manager resolution recomputes from scratch, so running it twice is harmless.
    ``Step.UNDO``: the import is an undo, whose work runs at this step (``core.undo``).
    """
    # The statements below join the import's rows with people and teams, which
    # the import has just filled: without fresh statistics PostgreSQL plans
    # them for the empty tables it last sampled (autovacuum may not have run
    # yet), which took finalizing at 50,000 rows from 7-9 s to 12-18 s.
    # ANALYZE samples a fixed number of rows, so this costs well under a second
    # whatever the size; outside the transaction so its lock is held briefly.
    # A small import changes the tables too little to matter, and on a busy
    # database those seconds were most of a 40-row import's time. So does a
    # nightly file whose rows nearly all settled as unchanged when recorded
    # (import_rows was analyzed then, and the workers wrote under a tenth of
    # it): 0.6 s of a 100,000-row resync's 7.5 s.
    rows = await conn.fetchrow(IMPORT_ROWS_APPLIED, import_id)
    if rows is not None and rows["applied"] >= max(ANALYZE_AFTER_ROWS, rows["total"] // 10):
        await conn.execute(ANALYZE_IMPORT_TABLES)
    async with conn.transaction():
        imp = await conn.fetchrow(LOCK_IMPORT, import_id)
        if imp is None or imp["state"] != ImportState.FINALIZING:
            return None
        tenant_id, mode = imp["tenant_id"], imp["mode"]
        if mode == Mode.UNDO:
            return Step.UNDO
        if imp["unchanged_at_recording"] and await conn.fetchval(
            REOPEN_MOVED_UNCHANGED_ROWS, import_id, tenant_id
        ):
            # Rows settled at recording whose person was written since: they are pending
            # again, and the import running, until the workers have applied them.
            log.info("import.rows_reopened", import_id=import_id)
            return Step.ROWS
        if mode != Mode.ADD_ONLY:
            await conn.execute(RELEASE_DEMOTED_MANAGERS, import_id, tenant_id)
        await conn.execute(ASSIGN_TEAM_MANAGERS, import_id, tenant_id, mode == Mode.ADD_ONLY)
        # Each person's manager follows from their primary team's (no copy to update).
        if mode == Mode.SYNC:
            log.info("import.managers_resolved", import_id=import_id)
            return Step.SWEEP
        await conn.execute(FINISH_IMPORT, import_id, 0, 0, None)
        await _record_invites(conn, imp)
        await events.record_import_event(conn, import_id, ImportState.DONE)
    log.info("import.done", import_id=import_id)
    return Step.DONE


async def _record_invites(conn: asyncpg.Connection, imp: asyncpg.Record) -> None:
    # In the transaction that finishes the import: a blocked or cancelled
    # import invites nobody.
    await invites.invite_import_people(conn, imp["id"], imp["tenant_id"], imp["invites"], imp["send_at"])


async def sweep_missing_people(conn: asyncpg.Connection, import_id: int, max_share: float) -> Step | None:
    """Deactivate the tenant's active people missing from a sync import's file.

    Returns ``Step.DONE``, ``Step.BLOCKED`` (the sweep would deactivate more than
    ``max_share`` of the active people and the run did not allow it), or None
    when the import is not waiting for its sweep.
    """
    async with conn.transaction():
        imp = await conn.fetchrow(LOCK_IMPORT, import_id)
        if imp is None or imp["state"] != ImportState.FINALIZING or imp["mode"] != Mode.SYNC:
            return None
        tenant_id = imp["tenant_id"]
        counts = await conn.fetchrow(SWEEP_CANDIDATES, import_id, tenant_id)
        would, admins, active = counts["would_deactivate"], counts["admins_kept"], counts["active"]
        if would > max_share * active and not imp["allow_mass_deactivation"]:
            await conn.execute(BLOCK_IMPORT, import_id, would, admins)
            await events.record_import_event(conn, import_id, ImportState.BLOCKED)
            log.warning("import.blocked", import_id=import_id, would_deactivate=would, active=active)
            return Step.BLOCKED
        status = await conn.execute(DEACTIVATE_MISSING_PEOPLE, import_id, tenant_id)
        deactivated = int(status.split()[-1])
        await conn.execute(FINISH_IMPORT, import_id, deactivated, admins, would)
        await _record_invites(conn, imp)
        await events.record_import_event(conn, import_id, ImportState.DONE)
    log.info("import.done", import_id=import_id, deactivated=deactivated, admins_kept=admins)
    return Step.DONE


async def fail_import(conn: asyncpg.Connection, import_id: int, reason: str) -> str | None:
    """Mark an unfinished import failed; return its tenant when it changed."""
    async with conn.transaction():
        imp = await conn.fetchrow(LOCK_IMPORT, import_id)
        if imp is None:
            return None
        status = await conn.execute(FAIL_IMPORT, import_id, reason)
        if status.endswith(" 0"):
            return None
        await events.record_import_event(conn, import_id, ImportState.FAILED)
    log.error("import.failed", import_id=import_id, reason=reason)
    return str(imp["tenant_id"])


async def cancel_import(conn: asyncpg.Connection, import_id: int) -> tuple[str | None, int]:
    """Cancel an import; return (its tenant if it was unfinished, invites cancelled).

    Rows already applied stay applied; pending rows are left unapplied (their
    messages find the import cancelled and do nothing) and no sweep runs. The
    import's unsent invites are cancelled too, also when it had already ended.
    """
    async with conn.transaction():
        tenant_id: str | None = await conn.fetchval(CANCEL_IMPORT, import_id)
        cancelled_invites = await invites.cancel_import_invites(conn, import_id)
        if tenant_id is not None:
            await events.record_import_event(conn, import_id, ImportState.CANCELLED)
    if tenant_id is not None:
        log.info("import.cancelled", import_id=import_id, invites_cancelled=cancelled_invites)
    return tenant_id, cancelled_invites


async def approve_mass_deactivation(conn: asyncpg.Connection, import_id: int) -> bool:
    """Let a blocked sync import run the sweep it held back; True if it was blocked."""
    return await conn.fetchval(APPROVE_MASS_DEACTIVATION, import_id) is not None
