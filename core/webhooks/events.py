"""The events of imports, recorded in the transaction that changes the import (an outbox).

``record_import_event`` runs inside the caller's transaction, right after the
statement that moved the import to ``done``, ``failed``, ``cancelled`` or
``blocked``: the event and its deliveries commit with the state change or
not at all, so no state change is ever without its event. A source's run
that stops before any import exists (blocked by its review, or failed)
records its own ``import.blocked`` or ``import.failed`` (``record_run_event``). The payload is
written once, as sent on every attempt and listed by the feed:
``{"id", "type", "timestamp", "data": {"import", "idempotency_key",
"external_id", "links"}}``. ``invites.completed`` is recorded by the
transaction that settles an import's last invite (``settle_invite``).

Sending the deliveries' messages is for the caller, once committed
(``core.outbox.send_new_deliveries``).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import structlog

from core.db import QUERIES
from core.settings import get_settings
from core.status import import_status
from core.vocabulary import EVENT_OF_STATE, EventType, ImportState

WEBHOOK_EVENT_EXISTS = QUERIES["webhook_event_exists"]
DATABASE_NOW = QUERIES["database_now"]
RECORD_WEBHOOK_EVENT = QUERIES["record_webhook_event"]
TENANT_ACTIVE_PEOPLE = QUERIES["tenant_active_people"]
INVITE_IMPORT = QUERIES["invite_import"]
LOCK_IMPORT_FOR_INVITES = QUERIES["lock_import_for_invites"]
IMPORT_HAS_OPEN_INVITES = QUERIES["import_has_open_invites"]
IMPORT_INVITES_SETTLED = QUERIES["import_invites_settled"]
RECORD_SOURCE_RUN_EVENT = QUERIES["record_source_run_event"]
IMPORT_EVENT_IS_BATCHED = QUERIES["import_event_is_batched"]
CLAIM_SCIM_BATCHES = QUERIES["claim_scim_batches"]

log = structlog.get_logger(__name__)


def links(import_id: int, base_url: str = "") -> dict[str, str]:
    """The status and errors URLs of an import (absolute with ``PUBLIC_BASE_URL``)."""
    base = base_url.rstrip("/")
    return {
        "status": f"{base}/api/imports/{import_id}",
        "errors": f"{base}/api/imports/{import_id}/errors.csv",
    }


async def record_event(
    conn: asyncpg.Connection,
    import_id: int,
    event_type: str,
    extra: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> int | None:
    """Record an event of the import and its pending deliveries; return how many deliveries.

    None when the import already had an event of this type (a repeated step).
    Must run in the transaction that made the change the event reports;
    ``status``: the import's status JSON, when the caller has just read it.
    """
    if await conn.fetchval(WEBHOOK_EVENT_EXISTS, import_id, event_type):
        return None
    status = status or await import_status(conn, import_id)
    public_id = f"evt_{uuid.uuid4().hex}"
    now = await conn.fetchval(DATABASE_NOW)
    payload = {
        "id": public_id,
        "type": event_type,
        "timestamp": now.isoformat(),
        "data": {
            "import": status,
            "idempotency_key": status["idempotency_key"],
            "external_id": status["external_id"],
            "links": links(import_id, get_settings().public_base_url),
            **(extra or {}),
        },
    }
    deliveries = await conn.fetch(
        RECORD_WEBHOOK_EVENT, public_id, status["tenant"], import_id, event_type, payload, now
    )
    log.info(
        "event.recorded", import_id=import_id, type=event_type, event_id=public_id, deliveries=len(deliveries)
    )
    return len(deliveries)


async def record_import_event(conn: asyncpg.Connection, import_id: int, state: ImportState) -> int | None:
    """The event of the state the import just reached (see ``EVENT_OF_STATE``).

    A SCIM import that is done records none: :func:`record_scim_batches` reports it with the others.
    """
    if state == ImportState.DONE and await conn.fetchval(IMPORT_EVENT_IS_BATCHED, import_id):
        return None
    if state != ImportState.BLOCKED:
        return await record_event(conn, import_id, EVENT_OF_STATE[state])
    # What the sweep guard holds back: the count, and its share of the active people.
    status = await import_status(conn, import_id)
    active = await conn.fetchval(TENANT_ACTIVE_PEOPLE, status["tenant"])
    share = status["would_deactivate"] / active if active else 0.0
    sweep = {"would_deactivate": status["would_deactivate"], "active": active, "share": share}
    return await record_event(conn, import_id, EVENT_OF_STATE[state], {"sweep": sweep}, status)


async def record_scim_batches(conn: asyncpg.Connection) -> list[int]:
    """One ``import.completed`` per tenant for its SCIM imports done since the last call; their anchors.

    The event is the newest import's (its status), with ``data.scim.imports``
    listing every import it reports; the deliveries are the caller's to send
    once committed (``core.outbox.send_new_deliveries`` of each anchor).
    """
    anchors = []
    async with conn.transaction():
        by_tenant: dict[str, list[int]] = {}
        for row in await conn.fetch(CLAIM_SCIM_BATCHES):
            by_tenant.setdefault(row["tenant_id"], []).append(row["id"])
        for ids in by_tenant.values():
            ids.sort()
            await record_event(conn, ids[-1], EventType.IMPORT_COMPLETED, {"scim": {"imports": ids}})
            anchors.append(ids[-1])
    return anchors


async def record_run_event(
    conn: asyncpg.Connection, run: dict[str, Any], event_type: EventType, external_id: str | None
) -> int:
    """Record the event of a source's run that stopped before any import existed; return its deliveries.

    ``import.blocked`` (the review found the file not importable, or the sweep
    guard would trip) or ``import.failed`` (the fetch failed for good). The
    body is an import's event's with ``data.import`` null and ``data.source_run``
    (``core.sources.runs.describe_run``) saying what happened and why; the
    links name the run and its source. Must run in the transaction that ended
    the run.
    """
    public_id = f"evt_{uuid.uuid4().hex}"
    now = await conn.fetchval(DATABASE_NOW)
    base = get_settings().public_base_url.rstrip("/")
    payload = {
        "id": public_id,
        "type": event_type,
        "timestamp": now.isoformat(),
        "data": {
            "import": None,
            "source_run": run,
            "reason": run["reason"],
            "idempotency_key": None,
            "external_id": external_id,
            "links": {
                "source": f"{base}/api/sources/{run['source']}",
                "run": f"{base}/api/sources/runs/{run['id']}",
            },
        },
    }
    deliveries = await conn.fetch(
        RECORD_SOURCE_RUN_EVENT, public_id, run["tenant"], run["id"], event_type, payload, now
    )
    log.info(
        "event.recorded",
        source_run=run["id"],
        type=event_type,
        event_id=public_id,
        deliveries=len(deliveries),
    )
    return len(deliveries)


async def settle_invite(conn: asyncpg.Connection, invite_id: int, statement: str, *args: Any) -> int | None:
    """Run ``statement`` (marking invite ``invite_id`` sent, failed or cancelled) and, when it
    settled the last open invite of its import (at least one sent or failed), record
    ``invites.completed``; return that import's id then.

    Race-safe: the import's row is locked between the two, so of two workers
    settling its last two invites at once exactly one records the event.
    """
    async with conn.transaction():
        status = await conn.execute(statement, invite_id, *args)
        import_id = await conn.fetchval(INVITE_IMPORT, invite_id)
        if status.endswith(" 0") or import_id is None:
            return None
        await conn.fetchval(LOCK_IMPORT_FOR_INVITES, import_id)
        if await conn.fetchval(IMPORT_HAS_OPEN_INVITES, import_id):
            return None
        settled = await conn.fetchrow(IMPORT_INVITES_SETTLED, import_id)
        if settled is None:
            return None
        recorded = await record_event(
            conn, import_id, EventType.INVITES_COMPLETED, {"invites": dict(settled)}
        )
    return import_id if recorded is not None else None
