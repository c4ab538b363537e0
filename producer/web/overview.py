"""What the operators' dashboard shows, as JSON-ready data: the queues, the
broker processes alive, the imports with their progress, rate and ETA
(:mod:`producer.web.dashboard` renders it; ``/dashboard.json`` serves it as is)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request

from core.recovery import stalled_since
from core.settings import Settings
from core.vocabulary import ImportState
from producer.queries import QUERIES
from producer.reports import import_status
from producer.web.context import pool_of

DASHBOARD_IMPORTS = QUERIES["dashboard_imports"]
DASHBOARD_NOW = QUERIES["dashboard_now"]

RECENT_IMPORTS = 50
_COUNTS = ("created", "updated", "unchanged", "skipped", "failed")


def progress(counts: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Progress of an import: rows settled of rows to apply, average rate, ETA.

    ``counts`` has the import's state, ``total_rows``, ``invalid_rows``, the
    outcome counts and ``started_at``. The rate is the average since the
    import started (the page's script measures a live one between refreshes).
    """
    valid = counts["total_rows"] - counts["invalid_rows"]
    settled = sum(counts[name] for name in _COUNTS)
    running = counts["state"] == ImportState.RUNNING
    started = counts["started_at"]
    elapsed = (now - started).total_seconds() if started is not None else 0.0
    rate = settled / elapsed if running and elapsed > 0 else None
    pending = max(valid - settled, 0)
    return {
        "valid": valid,
        "settled": settled,
        "pending": pending,
        "percent": round(100 * settled / valid, 1) if valid else 100.0,
        "rate": round(rate, 1) if rate is not None else None,
        "eta_seconds": round(pending / rate) if rate else None,
    }


def _import_entry(row: Any, stalled: dict[int, datetime]) -> dict[str, Any]:
    entry = {
        "id": row["id"],
        "tenant": row["tenant_id"],
        "mode": row["mode"],
        "state": row["state"],
        "file": row["filename"],
        "total": row["total_rows"],
        "invalid": row["invalid_rows"],
        "counts": {name: row[name] for name in _COUNTS},
        "deactivated": row["deactivated"],
        "error": row["error"],
        "created_at": row["created_at"].isoformat(),
        "stalled_since": stalled[row["id"]].isoformat() if row["id"] in stalled else None,
    }
    return entry | progress(dict(row), row["now"])


async def overview(request: Request) -> dict[str, Any]:
    """Everything the dashboard shows, as JSON-ready data."""
    state = request.app.state
    settings: Settings = state.settings
    depths = await state.broker_reader.queue_depths()
    brokers = await state.broker_reader.broker_processes()
    async with state.pool.acquire() as conn:
        rows = await conn.fetch(DASHBOARD_IMPORTS, RECENT_IMPORTS)
        stalled = await stalled_since(conn, settings.stall_after_s)
    return {
        "queues": [vars(depth) for depth in depths],
        "brokers": [vars(process) for process in brokers],
        "heartbeat_timeout_s": settings.heartbeat_timeout_ms / 1000,
        "imports": [_import_entry(row, stalled) for row in rows],
    }


async def import_detail(request: Request, import_id: int) -> dict[str, Any]:
    """An import's status (as ``status --json``) with its progress."""
    async with pool_of(request).acquire() as conn:
        status = await import_status(conn, import_id)
        now = await conn.fetchval(DASHBOARD_NOW)
    counts = {
        "state": status["state"],
        "total_rows": status["rows"]["total"],
        "invalid_rows": status["rows"]["invalid"],
        "started_at": datetime.fromisoformat(status["started_at"]) if status["started_at"] else None,
        **{name: status["rows"][name] for name in _COUNTS},
    }
    return status | {"progress": progress(counts, now)}
