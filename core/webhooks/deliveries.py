"""Delivering events to webhook endpoints: at least once, the same event id on every attempt.

PostgreSQL holds each delivery's schedule (``next_attempt_at``); the broker
holds at most one (delayed) ``deliver_webhook`` message per pending delivery.
An attempt claims its delivery first (two messages for one delivery attempt
it once), posts with no connection held, then records the answer: 2xx
delivered (never sent again), 410 Gone disables the endpoint, anything else
schedules the next attempt with exponential backoff (WEBHOOK_MIN_BACKOFF_MS
doubling up to WEBHOOK_MAX_BACKOFF_MS) until WEBHOOK_MAX_AGE_S (or
WEBHOOK_MAX_ATTEMPTS) has passed: then the delivery is dead, visible to the
operators, who may redeliver it. A lost message is re-sent by housekeeping
(``overdue_deliveries``); a worker dying mid-attempt leaves a claim that
expires. Nothing here runs inside an import's or an invite's work: a slow or
dead receiver delays only its own deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson
import structlog

from core.db import QUERIES
from core.errors import BulkImportError, WebhookNotFound
from core.settings import Settings
from core.vocabulary import DeliveryState
from core.webhooks import http as webhook_http
from core.webhooks import signing

CLAIM_WEBHOOK_DELIVERY = QUERIES["claim_webhook_delivery"]
WEBHOOK_DELIVERY_DUE = QUERIES["webhook_delivery_due"]
MARK_WEBHOOK_DELIVERED = QUERIES["mark_webhook_delivered"]
MARK_WEBHOOK_FAILED = QUERIES["mark_webhook_failed"]
DISABLE_WEBHOOK_ENDPOINT = QUERIES["disable_webhook_endpoint"]
DATABASE_NOW = QUERIES["database_now"]
NEW_DELIVERIES_OF_EVENT = QUERIES["new_deliveries_of_event"]
NEW_DELIVERIES_OF_RUN_EVENT = QUERIES["new_deliveries_of_run_event"]
OVERDUE_WEBHOOK_DELIVERIES = QUERIES["overdue_webhook_deliveries"]
REDELIVER_WEBHOOK = QUERIES["redeliver_webhook"]
WEBHOOK_DELIVERY_OF = QUERIES["webhook_delivery_of"]

log = structlog.get_logger(__name__)

# A claim outlives its attempt's timeout by this much before another worker may take over.
CLAIM_MARGIN_S = 30.0
OVERDUE_PAGE = 1_000


@dataclass(frozen=True)
class Outcome:
    """What one ``deliver`` call did: ``delivered``, ``retrying``, ``dead``, ``gone``,
    ``early`` (not due yet) or ``nothing`` (delivered, dead or being attempted already);
    ``next_at``: when the next attempt is due, for its delayed message."""

    name: str
    next_at: datetime | None = None


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The pause after the ``attempts``-th failed attempt: doubling from the minimum, capped."""
    ms = settings.webhook_min_backoff_ms * 2 ** min(attempts - 1, 40)
    return timedelta(milliseconds=min(ms, settings.webhook_max_backoff_ms))


def next_attempt(attempts: int, retry_from: datetime, now: datetime, settings: Settings) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None: the delivery is dead."""
    if settings.webhook_max_attempts and attempts >= settings.webhook_max_attempts:
        return None
    due = now + backoff(attempts, settings)
    if due > retry_from + timedelta(seconds=settings.webhook_max_age_s):
        return None
    return due


async def deliver(pool: asyncpg.Pool, delivery_id: int, settings: Settings) -> Outcome:
    """Attempt delivery ``delivery_id`` once if it is due; record what the receiver answered."""
    async with pool.acquire() as conn:
        claimed = await conn.fetchrow(
            CLAIM_WEBHOOK_DELIVERY, delivery_id, settings.webhook_timeout_s + CLAIM_MARGIN_S
        )
        if claimed is None:
            # Not due yet (a message early, after a redeliver say): wait again.
            due = await conn.fetchrow(WEBHOOK_DELIVERY_DUE, delivery_id)
            if (
                due is not None
                and due["state"] == DeliveryState.PENDING
                and due["next_attempt_at"] > due["now"]
            ):
                return Outcome("early", due["next_attempt_at"])
            return Outcome("nothing")
    if not claimed["enabled"]:
        attempt = webhook_http.Attempt(None, "the endpoint is disabled")
    else:
        body = orjson.dumps(claimed["payload"])
        secrets = [claimed["secret"], *([claimed["previous_secret"]] if claimed["previous_secret"] else [])]
        timestamp = int(claimed["attempted_at"].timestamp())
        headers = signing.headers(secrets, claimed["public_id"], timestamp, body)
        attempt = await webhook_http.post(
            claimed["url"], body, headers, settings.webhook_timeout_s, settings.webhook_allow_loopback
        )
    return await _record(pool, claimed, attempt, settings)


async def _record(
    pool: asyncpg.Pool, claimed: asyncpg.Record, attempt: webhook_http.Attempt, settings: Settings
) -> Outcome:
    delivery_id, attempts = claimed["id"], claimed["attempts"]
    fields = {"delivery_id": delivery_id, "event_id": claimed["public_id"], "attempt": attempts}
    async with pool.acquire() as conn:
        if attempt.delivered:
            await conn.execute(MARK_WEBHOOK_DELIVERED, delivery_id, attempt.status)
            log.info("webhook.delivered", status=attempt.status, **fields)
            return Outcome(DeliveryState.DELIVERED)
        if attempt.gone:
            reason = "410 Gone: the receiver asked for no more events; add the endpoint again to resume"
            async with conn.transaction():
                await conn.execute(MARK_WEBHOOK_FAILED, delivery_id, attempt.status, reason, attempts, None)
                await conn.execute(DISABLE_WEBHOOK_ENDPOINT, claimed["endpoint_id"], reason)
            log.warning("webhook.endpoint_gone", endpoint_id=claimed["endpoint_id"], **fields)
            return Outcome("gone")
        now = await conn.fetchval(DATABASE_NOW)
        due = None if not claimed["enabled"] else next_attempt(attempts, claimed["retry_from"], now, settings)
        await conn.execute(MARK_WEBHOOK_FAILED, delivery_id, attempt.status, attempt.error, attempts, due)
    if due is None:
        log.error("webhook.dead", status=attempt.status, error=attempt.error, **fields)
        return Outcome(DeliveryState.DEAD)
    log.warning(
        "webhook.retrying", status=attempt.status, error=attempt.error, next_at=due.isoformat(), **fields
    )
    return Outcome("retrying", due)


async def new_deliveries(conn: asyncpg.Connection, import_id: int, event_type: str) -> list[int]:
    """The deliveries the import's event of ``event_type`` just recorded, for their first message."""
    return [r["id"] for r in await conn.fetch(NEW_DELIVERIES_OF_EVENT, import_id, event_type)]


async def new_run_deliveries(conn: asyncpg.Connection, run_id: int, event_type: str) -> list[int]:
    """The deliveries a source run's event just recorded, for their first message."""
    return [r["id"] for r in await conn.fetch(NEW_DELIVERIES_OF_RUN_EVENT, run_id, event_type)]


async def overdue_deliveries(conn: asyncpg.Connection, grace_s: float) -> list[int]:
    """Pending deliveries due ``grace_s`` ago and not being attempted: their message was lost."""
    return [r["id"] for r in await conn.fetch(OVERDUE_WEBHOOK_DELIVERIES, grace_s, OVERDUE_PAGE)]


async def redeliver(
    conn: asyncpg.Connection, delivery_id: int, tenant: str | None, *, again: bool = False
) -> int:
    """Make a delivery due now with fresh retries (an operator's or a service's redeliver).

    A delivered one only with ``again``. Raises ``BulkImportError`` saying why
    not otherwise; the caller sends its message.
    """
    row = await conn.fetchval(REDELIVER_WEBHOOK, delivery_id, tenant, again)
    if row is not None:
        log.info("webhook.redelivery", delivery_id=delivery_id)
        return delivery_id
    found = await conn.fetchrow(WEBHOOK_DELIVERY_OF, delivery_id)
    if found is None or (tenant is not None and found["tenant_id"] != tenant):
        scope = f" for tenant {tenant!r}" if tenant else ""
        raise WebhookNotFound(f"no webhook delivery {delivery_id}{scope}")
    if not found["enabled"]:
        raise BulkImportError(
            f"delivery {delivery_id}'s endpoint is disabled ({found['disabled_reason']}): "
            "add the URL again with `bulk-import webhook add`, then redeliver"
        )
    raise BulkImportError(f"delivery {delivery_id} was delivered already: nothing to redeliver")
