"""The schedule's ticks: exactly one run per tick, whatever the number of workers and machines.

Every worker process's housekeeping pass calls :func:`claim_due_ticks`. The
claim is in PostgreSQL, not in a scheduler's leadership: it holds across
machines without electing anyone, and a process that dies mid-claim leaves
nothing behind (its transaction rolls back). In one transaction the due
sources are locked ``FOR UPDATE SKIP LOCKED`` (a source another process is
claiming is skipped, not waited for), each one's ``next_run_at`` is moved on
only where it still holds the tick read (``advance_source``), and the tick's
run is inserted, unique per (source, tick). The next tick is computed from
*now*, so ticks missed while everything was down yield one run, not one per
tick. :func:`lost_runs` finds the unfinished runs whose message the broker
lost, for housekeeping to send again.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import structlog

from core.sources.queries import QUERIES
from core.sources.schedule import next_tick

DUE_SOURCES = QUERIES["due_sources"]
ADVANCE_SOURCE = QUERIES["advance_source"]
INSERT_SOURCE_RUN = QUERIES["insert_source_run"]
OVERDUE_SOURCE_RUNS = QUERIES["overdue_source_runs"]

log = structlog.get_logger(__name__)

DUE_PAGE = 100
OVERDUE_PAGE = 1_000


async def claim_due_ticks(conn: asyncpg.Connection, now: datetime) -> list[int]:
    """Claim every source tick due at ``now``; return the runs created (their messages are the caller's)."""
    runs: list[int] = []
    async with conn.transaction():
        for source in await conn.fetch(DUE_SOURCES, now, DUE_PAGE):
            tick = source["next_run_at"]
            following = next_tick(source["schedule"], source["timezone"], source["schedule_from"], now)
            if await conn.fetchval(ADVANCE_SOURCE, source["id"], tick, following) is None:
                continue  # another process moved it on first
            run_id = await conn.fetchval(
                INSERT_SOURCE_RUN, source["id"], source["tenant_id"], tick, now, None
            )
            if run_id is None:
                # The source's previous run is still under way (retrying, say): it takes the newest file.
                log.info("source.tick_absorbed", source_id=source["id"], tick=tick.isoformat())
                continue
            log.info("source.tick", source_id=source["id"], tick=tick.isoformat(), source_run=run_id)
            runs.append(run_id)
    return runs


async def lost_runs(conn: asyncpg.Connection, now: datetime, grace_s: float) -> list[int]:
    """Unfinished runs due ``grace_s`` before ``now`` and not being attempted: their message was lost."""
    return [r["id"] for r in await conn.fetch(OVERDUE_SOURCE_RUNS, now, grace_s, OVERDUE_PAGE)]
