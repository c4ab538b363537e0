"""A source's runs as everyone reads them, and asking for one now.

A run is created by its tick (``core.sources.ticks``) or by hand (``source
run``, the admins' "Run now", ``POST /api/sources/{id}/run``); a source has
at most one unfinished run at a time, so asking while one is under way
returns that one. The attempts themselves are ``core.sources.run``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from core.errors import InvalidState, SourceNotFound
from core.sources.queries import QUERIES

SOURCE_OF_TENANT = QUERIES["source_of_tenant"]
INSERT_SOURCE_RUN = QUERIES["insert_source_run"]
OPEN_RUN_OF_SOURCE = QUERIES["open_run_of_source"]
SOURCE_RUN = QUERIES["source_run"]
RUNS_OF_SOURCE = QUERIES["runs_of_source"]
STOPPED_RUNS_OF_TENANT = QUERIES["stopped_runs_of_tenant"]
SOURCE_RUN_COUNTS = QUERIES["source_run_counts"]

RUNS_SHOWN = 20


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def describe_run(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A run as the CLI, the API, the pages and its events show it."""
    return {
        "id": row["id"],
        "source": row["source_id"],
        "source_name": row["source_name"],
        "tenant": row["tenant_id"],
        "tick": _iso(row["tick"]),
        "state": row["state"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "file": row["filename"],
        "bytes": row["bytes"],
        "sha256": row["sha256"].hex() if row["sha256"] is not None else None,
        "import_id": row["import_id"],
        "would_deactivate": row["would_deactivate"],
        "attempts": row["attempts"],
        "next_attempt_at": _iso(row["next_attempt_at"]) if row["state"] == "pending" else None,
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "finished_at": _iso(row["finished_at"]),
    }


async def get_run(conn: asyncpg.Connection | asyncpg.Pool, run_id: int, tenant: str | None) -> dict[str, Any]:
    """Run ``run_id`` of the tenant (None: any tenant's); ``SourceNotFound`` otherwise."""
    row = await conn.fetchrow(SOURCE_RUN, run_id, tenant)
    if row is None:
        raise SourceNotFound(f"no source run {run_id}" + (f" for tenant {tenant!r}" if tenant else ""))
    return describe_run(row)


async def runs_of_source(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str, source_id: int, limit: int = RUNS_SHOWN
) -> list[dict[str, Any]]:
    """The source's latest runs, newest first."""
    return [describe_run(r) for r in await conn.fetch(RUNS_OF_SOURCE, source_id, tenant, limit)]


async def stopped_runs(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str, limit: int
) -> list[dict[str, Any]]:
    """The tenant's latest runs that ended blocked or failed, newest first."""
    return [describe_run(r) for r in await conn.fetch(STOPPED_RUNS_OF_TENANT, tenant, limit)]


async def request_run(
    conn: asyncpg.Connection,
    tenant: str,
    source_id: int,
    now: datetime,
    *,
    approve: bytes | None = None,
) -> tuple[int, bool]:
    """A run of the source now; returns (its id, True) or, when one is under way, (that one's, False).

    ``approve``: the SHA-256 of a file blocked by the sweep guard that the
    admin approved: this run imports that very file despite the guard.
    The caller sends its message once committed.
    """
    if await conn.fetchrow(SOURCE_OF_TENANT, source_id, tenant) is None:
        raise SourceNotFound(f"no source {source_id} for tenant {tenant!r}: see `bulk-import source list`")
    run_id = await conn.fetchval(INSERT_SOURCE_RUN, source_id, tenant, None, now, approve)
    if run_id is not None:
        return run_id, True
    return await conn.fetchval(OPEN_RUN_OF_SOURCE, source_id), False


async def approve_run(conn: asyncpg.Connection, tenant: str, run_id: int, now: datetime) -> tuple[int, bool]:
    """A new run of a run's source that imports its guard-blocked file anyway (see ``request_run``)."""
    run = await conn.fetchrow(SOURCE_RUN, run_id, tenant)
    if run is None:
        raise SourceNotFound(f"no source run {run_id} for tenant {tenant!r}")
    if run["outcome"] != "blocked" or run["would_deactivate"] is None or run["sha256"] is None:
        raise InvalidState(
            f"source run {run_id} was not blocked by the sweep guard: there is no deactivation to approve"
        )
    return await request_run(conn, tenant, run["source_id"], now, approve=run["sha256"])


async def run_counts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    """Runs by outcome (``pending``: unfinished), for the metrics."""
    return {r["outcome"]: r["runs"] for r in await conn.fetch(SOURCE_RUN_COUNTS)}
