"""A source's run asked for now, and waited for: what the CLI, the API and the admins' pages share.

The run itself happens on the workers (``run_source``, ``core.sources.run``),
like a scheduled tick's: asking records the run and sends its message. A
message that cannot be sent (Redis down) costs nothing: the run waits in
PostgreSQL and housekeeping sends it once overdue.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import structlog

from core import outbox, queues
from core.db import connection
from core.errors import BulkImportError
from core.settings import Settings
from core.sources import runs, store
from core.vocabulary import RunState

log = structlog.get_logger(__name__)

POLL_S = 0.2


async def run_now(
    settings: Settings, tenant: str | None, source_id: int | None, *, approve: int | None = None
) -> tuple[dict[str, Any], bool]:
    """A run of the source now (``approve``: of the guard-blocked run of that id, importing its file
    anyway); returns (the run, True), or (the run under way, False)."""
    now = datetime.now(UTC)
    async with connection(settings.database_url) as conn:
        if approve is not None:
            owner = tenant or (await runs.get_run(conn, approve, None))["tenant"]
            run_id, new = await runs.approve_run(conn, owner, approve, now)
        else:
            assert source_id is not None
            owner = tenant or (await store.get_source(conn, None, source_id))["tenant"]
            run_id, new = await runs.request_run(conn, owner, source_id, now)
        if new:
            try:
                await outbox.send_source_runs([run_id])
            except queues.BROKER_ERRORS as exc:
                log.warning("source.run.send_deferred", source_run=run_id, error=repr(exc))
        return await runs.get_run(conn, run_id, owner), new


async def wait_run(settings: Settings, run_id: int, timeout_s: float | None = None) -> dict[str, Any]:
    """Poll the run until it has its outcome (``timeout_s``: at most that long); return it."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    async with connection(settings.database_url) as conn:
        while True:
            run = await runs.get_run(conn, run_id, None)
            if run["state"] == RunState.DONE:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise BulkImportError(
                    f"source run {run_id} has no outcome after {timeout_s:g} s: is a worker running?"
                )
            await asyncio.sleep(POLL_S)
