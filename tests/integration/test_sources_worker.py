"""Scheduled sources end to end on the Procfile's worker: a tick due is claimed by the
housekeeping of whichever worker process looks first, and however many look (the session's
worker and two more processes here), the tick makes one run and one import."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from core.settings import get_settings
from core.sources import store
from core.sources.store import NewSource
from core.sources.vault import Secrets
from core.tenants import set_tenant
from tests.support.imports import person, wait_final, write_csv
from tests.support.services import WorkerProcess
from tests.support.sources import SftpServer


async def test_two_more_workers_and_one_tick_make_one_run_and_one_import(
    conn: Any, tenant: str, tmp_path: Path, worker: WorkerProcess
) -> None:
    (tmp_path / "sftp").mkdir()
    sftp = SftpServer(tmp_path / "sftp")
    sftp.start()
    more = WorkerProcess(WORKER_PROCESSES="2", WORKER_THREADS="4")
    more.log_path = tmp_path / "more-workers.log"
    try:
        more.start()
        rows = [
            person("Ada", "L", f"ada.{tenant}@example.com"),
            person("Bo", "N", f"bo.{tenant}@example.com"),
        ]
        sftp.drop("people.csv", write_csv(tmp_path / "p.csv", rows).read_text())
        await set_tenant(conn, tenant, None, None, None)
        new = NewSource(
            tenant=tenant,
            name="nightly",
            url=sftp.url("people.csv"),
            secrets=Secrets(password=sftp.password),
            host_key=sftp.fingerprint,
            schedule="every 24 hours",
        )
        now = await conn.fetchval("SELECT now()")
        source = await store.add_source(conn, new, get_settings(), now)
        # The clock of the test: the tick is made due now, for every worker's housekeeping at once.
        await conn.execute(
            "UPDATE sources SET next_run_at = now() - interval '1 second' WHERE id = $1", source["id"]
        )
        runs = "SELECT id, outcome, import_id FROM source_runs WHERE source_id = $1"
        deadline = time.monotonic() + 60
        while not (found := await conn.fetch(runs, source["id"])) or found[0]["outcome"] is None:
            assert time.monotonic() < deadline, f"no run ended within 60 s: {found}"
            await asyncio.sleep(0.1)
        (run,) = found
        assert run["outcome"] == "imported"
        assert (await wait_final(conn, run["import_id"]))["rows"]["created"] == 2
        # One run, one import: the claim moved the tick a day on, so no pass after it finds it due.
        assert await conn.fetchval("SELECT count(*) FROM imports WHERE source_id = $1", source["id"]) == 1
        assert len(await conn.fetch(runs, source["id"])) == 1
        shown = await store.get_source(conn, tenant, source["id"])
        assert shown["next_run_at"] > now.isoformat()
    finally:
        more.stop()
        sftp.close()
