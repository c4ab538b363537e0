"""A tenant's webhook endpoints: add (with a new signing secret), list, remove, rotate.

The CLI (``bulk-import webhook``) and the HTTP API (``/api/webhooks``) both
come here. A URL is checked when added (``core.webhooks.http``: https, a
public address) and again before every attempt. The secret is returned once,
at creation or rotation, and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import structlog

from core.db import QUERIES
from core.errors import BulkImportError, WebhookNotFound
from core.vocabulary import DeliveryState, EventType
from core.webhooks import http as webhook_http
from core.webhooks import signing

WEBHOOK_TENANT_EXISTS = QUERIES["webhook_tenant_exists"]
INSERT_WEBHOOK_ENDPOINT = QUERIES["insert_webhook_endpoint"]
WEBHOOK_ENDPOINTS_OF_TENANT = QUERIES["webhook_endpoints_of_tenant"]
DELETE_WEBHOOK_ENDPOINT = QUERIES["delete_webhook_endpoint"]
DATABASE_NOW = QUERIES["database_now"]
ROTATE_WEBHOOK_SECRET = QUERIES["rotate_webhook_secret"]

log = structlog.get_logger(__name__)

MAX_URL_CHARS = 2_000


@dataclass(frozen=True)
class NewSecret:
    """An endpoint as listed, and the secret just made for it (shown once)."""

    endpoint: dict[str, Any]
    secret: str


def check_events(events: list[str] | None) -> list[str]:
    """The event types asked for (all of them when none), each one known."""
    if not events:
        return list(tuple(EventType))
    unknown = [e for e in events if e not in tuple(EventType)]
    if unknown:
        raise BulkImportError(
            f"unknown event type {', '.join(map(repr, unknown))}: choose among {', '.join(tuple(EventType))}"
        )
    return list(dict.fromkeys(events))


def describe(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """An endpoint as the CLI and the API show it (never its secret)."""
    shown = {
        "id": row["id"],
        "tenant": row["tenant_id"],
        "url": row["url"],
        "events": list(row["events"]),
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "created_at": row["created_at"].isoformat(),
    }
    for key in DeliveryState:
        if key in row:
            shown.setdefault("deliveries", {})[key] = row[key]
    return shown


async def add_endpoint(
    conn: asyncpg.Connection, tenant: str, url: str, events: list[str] | None, *, allow_loopback: bool
) -> NewSecret:
    """Register ``url`` for the tenant's ``events`` (default: all); the secret is in the result."""
    if len(url) > MAX_URL_CHARS:
        raise BulkImportError(f"the URL is over {MAX_URL_CHARS} characters")
    chosen = check_events(events)
    await webhook_http.safe_address(url, allow_loopback)
    if await conn.fetchval(WEBHOOK_TENANT_EXISTS, tenant) is None:
        raise BulkImportError(
            f"no tenant {tenant!r}: a tenant exists once it has imported a file"
            " (or been set with `bulk-import tenant set`)"
        )
    secret = signing.new_secret()
    row = await conn.fetchrow(INSERT_WEBHOOK_ENDPOINT, tenant, url, chosen, secret)
    log.info("webhook.endpoint_added", tenant=tenant, endpoint_id=row["id"])
    return NewSecret(describe(row), secret)


async def list_endpoints(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> list[dict[str, Any]]:
    """The tenant's endpoints, with their deliveries' counts."""
    return [describe(r) for r in await conn.fetch(WEBHOOK_ENDPOINTS_OF_TENANT, tenant)]


async def remove_endpoint(conn: asyncpg.Connection | asyncpg.Pool, tenant: str, endpoint_id: int) -> None:
    """Remove an endpoint of the tenant, its deliveries with it (its events stay in the feed)."""
    if await conn.fetchval(DELETE_WEBHOOK_ENDPOINT, endpoint_id, tenant) is None:
        raise WebhookNotFound(f"no webhook endpoint {endpoint_id} for tenant {tenant!r}: see `webhook list`")
    log.info("webhook.endpoint_removed", tenant=tenant, endpoint_id=endpoint_id)


async def rotate_secret(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str, endpoint_id: int, grace_s: int
) -> str:
    """A new secret for the endpoint; the old one still signs for ``grace_s`` seconds. Returns the new one."""
    secret = signing.new_secret()
    until = await conn.fetchval(DATABASE_NOW) + timedelta(seconds=grace_s)
    if await conn.fetchval(ROTATE_WEBHOOK_SECRET, endpoint_id, tenant, secret, until) is None:
        raise WebhookNotFound(f"no webhook endpoint {endpoint_id} for tenant {tenant!r}: see `webhook list`")
    log.info("webhook.secret_rotated", tenant=tenant, endpoint_id=endpoint_id, old_until=until.isoformat())
    return secret
