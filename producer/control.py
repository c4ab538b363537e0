"""Steering imports from outside the workers: cancel, resume and undo.

PostgreSQL holds each import's truth, so these work from any process and after
any loss of Redis: resume re-sends whatever the database says is unfinished
(a message delivered twice is harmless: every actor is idempotent). Also
``invites send`` and the tenant's settings.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from core import imports, invites, outbox, undo
from core.db import connection
from core.errors import BulkImportError, ImportNotFound, InvalidState
from core.recovery import resend_unfinished, start_and_dispatch
from core.settings import Settings
from core.tenants import find_tenant, set_tenant
from core.undo import check_undoable
from core.undo_plan import REPORT_HEADER
from core.vocabulary import EventType, ImportState
from producer.queries import QUERIES

GET_IMPORT = QUERIES["get_import"]
LOCK_IMPORT_FOR_UNDO = QUERIES["lock_import_for_undo"]
LIVE_UNDO_OF_IMPORT = QUERIES["live_undo_of_import"]
INSERT_UNDO = QUERIES["insert_undo"]


async def cancel_import(settings: Settings, import_id: int) -> str:
    """Cancel an unfinished import and start the tenant's next one; say what happened."""
    async with connection(settings.database_url) as conn:
        imp = await conn.fetchrow(GET_IMPORT, import_id)
        if imp is None:
            raise ImportNotFound(f"no import {import_id}")
        tenant, cancelled_invites = await imports.cancel_import(conn, import_id)
        if tenant is not None:
            await outbox.send_new_deliveries(conn, import_id, EventType.IMPORT_CANCELLED)
        if tenant is None:
            if cancelled_invites:
                ended = f"import {import_id} had already ended"
                return f"{ended}; its {cancelled_invites} unsent invites are cancelled"
            raise InvalidState(f"import {import_id} has already ended ({imp['state']}): nothing to cancel")
        started = await start_and_dispatch(conn, tenant)
    message = f"import {import_id} cancelled"
    if cancelled_invites:
        message += f", with its {cancelled_invites} unsent invites"
    return message + (f"; import {started} of {tenant} started" if started else "")


async def resume_import(settings: Settings, import_id: int, allow_mass_deactivation: bool = False) -> str:
    """Re-send the unfinished work of an import; approve a blocked sweep when asked."""
    async with connection(settings.database_url) as conn:
        imp = await conn.fetchrow(GET_IMPORT, import_id)
        if imp is None:
            raise ImportNotFound(f"no import {import_id}")
        state, tenant = ImportState(imp["state"]), imp["tenant_id"]
        done = await resend_unfinished(conn, import_id, state, tenant)
        if done is not None:
            return done
        if state == ImportState.BLOCKED:
            if not allow_mass_deactivation:
                raise InvalidState(
                    f"import {import_id} is blocked: its sweep would deactivate "
                    f"{imp['would_deactivate']} people; approve it with "
                    f"`bulk-import resume {import_id} --allow-mass-deactivation`, or cancel it"
                )
            await imports.approve_mass_deactivation(conn, import_id)
            await outbox.send_sweep(import_id)
            return f"import {import_id}: sweep approved; deactivating {imp['would_deactivate']} people"
        if state == ImportState.DONE:
            # Its invites: re-create the delayed messages Redis may have lost.
            batches = await invites.scheduled_batches(conn, import_id)
            for batch in batches:
                await outbox.schedule_invite_batch(batch.id, batch.send_at)
            if batches:
                return f"import {import_id} is done; re-scheduled {len(batches)} invite batches"
    raise InvalidState(f"import {import_id} is {state}: nothing to resume")


async def undo_import(
    settings: Settings, import_id: int, *, tenant: str | None = None, token_id: int | None = None
) -> tuple[int, bool, str]:
    """Start (or queue behind the tenant's running import) the undo of a finished import.

    Returns the undo's id, whether it was made now, and what happened. Asking
    again while an undo of the import is queued, running or done returns that
    one: a second undo does nothing. With ``tenant``, an import of another
    tenant is not found.
    """
    async with connection(settings.database_url) as conn:
        imp = await conn.fetchrow(GET_IMPORT, import_id)
        check_undoable(imp, import_id, tenant)
        owner = imp["tenant_id"]
        async with conn.transaction():
            await conn.execute(LOCK_IMPORT_FOR_UNDO, import_id)
            live = await conn.fetchrow(LIVE_UNDO_OF_IMPORT, import_id)
            if live is not None:
                done = "has been undone" if live["state"] == ImportState.DONE else "is being undone"
                return (
                    live["id"],
                    False,
                    f"import {import_id} {done} by import {live['id']} ({live['state']})",
                )
            undo_id: int = await conn.fetchval(
                INSERT_UNDO,
                owner,
                import_id,
                f"undo of import {import_id}",
                {"header": list(REPORT_HEADER)},
                token_id,
            )
        started = await start_and_dispatch(conn, owner)
    if started == undo_id:
        return undo_id, True, f"undo {undo_id} of import {import_id} started"
    return undo_id, True, f"undo {undo_id} of import {import_id} queued behind the running import of {owner}"


async def preview_undo(settings: Settings, import_id: int, tenant: str | None = None) -> dict[str, Any]:
    """What undoing the import would do now (the dry run): read-only, nothing written."""
    async with connection(settings.database_url) as conn:
        return await undo.preview_undo(
            conn, import_id, settings.undo_retention_days, settings.undo_batch_size, tenant=tenant
        )


async def send_pending_invites(
    settings: Settings,
    tenant: str,
    import_id: int | None,
    send_at: datetime | None,
    *,
    resend_renamed: bool = False,
) -> str:
    """``invites send``: send (or schedule) the tenant's pending invites; with ``resend_renamed``,
    instead the invites already sent to an address their person no longer has."""
    schedule = invites.resend_renamed_invites if resend_renamed else invites.schedule_pending_invites
    batch, count = await _new_invite_batch(
        settings, tenant, lambda conn: schedule(conn, tenant, import_id, send_at)
    )
    if batch is None:
        if resend_renamed:
            return (
                f"no invites sent to an address their person no longer has, for {_scope(tenant, import_id)}"
            )
        return f"no pending invites for {_scope(tenant, import_id)}"
    when = "now" if send_at is None else f"at {batch.send_at.isoformat()}"
    what = "invites will be sent again, to the new address," if resend_renamed else "invites will be sent"
    return f"{count} {what} {when} (batch {batch.id})"


async def retry_failed_invites(settings: Settings, tenant: str, import_id: int | None) -> str:
    """``invites retry``: send the tenant's failed invites again, now; each once in effect."""
    batch, count = await _new_invite_batch(
        settings, tenant, lambda conn: invites.retry_failed_invites(conn, tenant, import_id)
    )
    if batch is None:
        return f"no failed invites for {_scope(tenant, import_id)} (of people still active)"
    return f"{count} failed invites will be sent again now (batch {batch.id})"


async def _new_invite_batch(
    settings: Settings,
    tenant: str,
    make: Callable[[asyncpg.Connection], Awaitable[tuple[invites.Batch | None, int]]],
) -> tuple[invites.Batch | None, int]:
    """The batch ``make`` records for an existing tenant, with its delayed message sent."""
    async with connection(settings.database_url) as conn:
        if await find_tenant(conn, tenant) is None:
            raise BulkImportError(
                f"no tenant {tenant!r}: a tenant exists once it has imported a file"
                " (or been set with `bulk-import tenant set`)"
            )
        batch, count = await make(conn)
    if batch is not None:
        await outbox.schedule_invite_batch(batch.id, batch.send_at)
    return batch, count


def _scope(tenant: str, import_id: int | None) -> str:
    return f"import {import_id}" if import_id is not None else f"tenant {tenant}"


async def update_tenant(
    settings: Settings, tenant: str, name: str | None, timezone: str | None, language: str | None
) -> dict[str, str]:
    """Create or change a tenant (name, timezone for naive times, default language)."""
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            message = f"unknown timezone {timezone!r}: use an IANA name such as Europe/Paris"
            raise BulkImportError(message) from None
    if language is not None and not re.fullmatch(r"[a-z]{2}", language):
        raise BulkImportError(f"language {language!r} must be an ISO 639-1 code such as en or fr")
    async with connection(settings.database_url) as conn:
        row = await set_tenant(conn, tenant, name, timezone, language)
    return dict(row)
