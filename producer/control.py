"""Steering imports from outside the workers: cancel and resume.

PostgreSQL holds each import's truth, so these work from any process and after
any loss of Redis: resume re-sends whatever the database says is unfinished
(a message delivered twice is harmless: every actor is idempotent).
"""

from __future__ import annotations

import asyncio

import asyncpg

from worker.db import QUERIES, connection
from worker.errors import ImportNotFound, InvalidState
from worker.settings import Settings


async def _start_and_dispatch(conn: asyncpg.Connection, tenant: str) -> int | None:
    """Start the tenant's next queued import, if it may, and send its rows."""
    from worker.actors import finalize_import, send_row_messages
    from worker.imports import dispatch_pending_rows, start_next_import

    started = await start_next_import(conn, tenant)
    if started is not None:
        _, claimed = await dispatch_pending_rows(conn, started, send_row_messages)
        if claimed:
            await asyncio.to_thread(finalize_import.send, started)
    return started


async def cancel_import(settings: Settings, import_id: int) -> str:
    """Cancel an unfinished import and start the tenant's next one; say what happened."""
    from worker import imports

    async with connection(settings.database_url) as conn:
        imp = await conn.fetchrow(QUERIES["get_import"], import_id)
        if imp is None:
            raise ImportNotFound(f"no import {import_id}")
        tenant = await imports.cancel_import(conn, import_id)
        if tenant is None:
            raise InvalidState(f"import {import_id} has already ended ({imp['state']}): nothing to cancel")
        started = await _start_and_dispatch(conn, tenant)
    message = f"import {import_id} cancelled"
    return message + (f"; import {started} of {tenant} started" if started else "")


async def resume_import(settings: Settings, import_id: int, allow_mass_deactivation: bool = False) -> str:
    """Re-send the unfinished work of an import; approve a blocked sweep when asked."""
    from worker import imports
    from worker.actors import finalize_import, send_row_messages, sweep_missing_people

    async with connection(settings.database_url) as conn:
        imp = await conn.fetchrow(QUERIES["get_import"], import_id)
        if imp is None:
            raise ImportNotFound(f"no import {import_id}")
        state, tenant = imp["state"], imp["tenant_id"]
        if state == "queued":
            started = await _start_and_dispatch(conn, tenant)
            if started == import_id:
                return f"import {import_id} started"
            active = await conn.fetchval(QUERIES["active_import_of_tenant"], tenant)
            return f"import {import_id} is queued behind import {active} of {tenant}"
        if state == "running":
            sent, claimed = await imports.dispatch_pending_rows(conn, import_id, send_row_messages)
            if claimed:
                await asyncio.to_thread(finalize_import.send, import_id)
                return f"import {import_id}: every row has settled; finalizing"
            return f"import {import_id}: re-sent {sent} unsettled rows"
        if state == "finalizing":
            await asyncio.to_thread(finalize_import.send, import_id)
            return f"import {import_id}: finalizing step re-sent"
        if state == "blocked":
            if not allow_mass_deactivation:
                raise InvalidState(
                    f"import {import_id} is blocked: its sweep would deactivate "
                    f"{imp['would_deactivate']} people; approve it with "
                    f"`bulk-import resume {import_id} --allow-mass-deactivation`, or cancel it"
                )
            await imports.approve_mass_deactivation(conn, import_id)
            await asyncio.to_thread(sweep_missing_people.send, import_id)
            return f"import {import_id}: sweep approved; deactivating {imp['would_deactivate']} people"
    raise InvalidState(f"import {import_id} is {state}: nothing to resume")
