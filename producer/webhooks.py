"""Webhooks from outside the workers: the deliveries as operators see them, redeliver,
and the events feed for services that poll (``GET /api/events``).

The endpoints themselves are ``core.webhooks.endpoints``'s; the CLI
(``bulk-import webhook``), the API and the dashboard come here for the rest.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from core import outbox
from core.errors import BulkImportError
from core.vocabulary import DeliveryState
from core.webhooks import deliveries
from producer.queries import QUERIES

WEBHOOK_DELIVERIES_LIST = QUERIES["webhook_deliveries_list"]
WEBHOOK_EVENTS_AFTER = QUERIES["webhook_events_after"]

FEED_PAGE = 100


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_deliveries(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str | None, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The latest deliveries (of ``tenant``, in ``state``, when given), newest first."""
    if state is not None and state not in tuple(DeliveryState):
        raise BulkImportError(
            f"unknown delivery state {state!r}: choose one of {', '.join(tuple(DeliveryState))}"
        )
    rows = await conn.fetch(WEBHOOK_DELIVERIES_LIST, tenant, state, limit)
    return [
        {
            "id": r["id"],
            "state": r["state"],
            "failing": r["state"] == DeliveryState.PENDING and r["last_error"] is not None,
            "event_id": r["event_id"],
            "type": r["type"],
            "import_id": r["import_id"],
            "tenant": r["tenant_id"],
            "endpoint_id": r["endpoint_id"],
            "url": r["url"],
            "attempts": r["attempts"],
            "last_status": r["last_status"],
            "last_error": r["last_error"],
            "last_attempt_at": _iso(r["last_attempt_at"]),
            "next_attempt_at": _iso(r["next_attempt_at"]) if r["state"] == DeliveryState.PENDING else None,
            "delivered_at": _iso(r["delivered_at"]),
            "created_at": _iso(r["created_at"]),
        }
        for r in rows
    ]


async def redeliver(
    conn: asyncpg.Connection | asyncpg.Pool, delivery_id: int, tenant: str | None, *, again: bool = False
) -> str:
    """Make a delivery due now with fresh retries and send its message; say what happened."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as one:
            await deliveries.redeliver(one, delivery_id, tenant, again=again)
    else:
        await deliveries.redeliver(conn, delivery_id, tenant, again=again)
    await outbox.send_deliveries([delivery_id])
    return f"delivery {delivery_id} will be attempted again now"


async def events_after(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str, after: int, limit: int = FEED_PAGE
) -> dict[str, Any]:
    """The tenant's events after cursor ``after``, oldest first, and the cursor to ask with next.

    The cursor is opaque to callers (a number, as text): pass back ``next_cursor``
    as ``?after=``; when no event is newer it stays the same.
    """
    rows = await conn.fetch(WEBHOOK_EVENTS_AFTER, tenant, after, limit)
    cursor = rows[-1]["id"] if rows else after
    return {
        "events": [r["payload"] for r in rows],
        "next_cursor": str(cursor),
        "more": len(rows) == limit,
    }
