"""Secrets (database and SMTP passwords) never reach a log line or a stored error."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.db import connect
from tests.support.drills import Drill, drill_rows, shared_server_database
from tests.support.environment import SERVER_URL, TEST_DATABASE
from tests.support.imports import wait_final, write_csv
from tests.support.services import free_port


@pytest.fixture(scope="module")
def secrets_database(database_url: str) -> Iterator[str]:
    with shared_server_database(SERVER_URL, f"{TEST_DATABASE}_secrets") as url:
        yield url


async def test_an_smtp_password_is_never_logged_or_stored(
    secrets_database: str, redis_url: str, tmp_path: Path
) -> None:
    # Nothing listens there: every send fails and is retried, and says why.
    smtp_url = f"smtp://mailer:s3cret-smtp-pw@127.0.0.1:{free_port()}"
    world = Drill(secrets_database, redis_url, tmp_path, SMTP_URL=smtp_url, INVITE_MIN_BACKOFF_MS="100")
    conn = await connect(secrets_database)
    try:
        world.worker.start()
        tenant = f"secret-{uuid.uuid4().hex[:8]}"
        path = write_csv(tmp_path / "a.csv", drill_rows(f"{tenant}.example.com", 3))
        import_id = world.submit(path, tenant, invites="now")
        await wait_final(conn, import_id)

        deadline = time.monotonic() + 60
        while not await conn.fetchval(
            "SELECT bool_and(attempts >= 2 AND error IS NOT NULL) FROM invites WHERE tenant_id = $1", tenant
        ):
            assert time.monotonic() < deadline, "the sends were not attempted twice within 60 s"
            await asyncio.sleep(0.2)
        errors: list[Any] = [
            r["error"] for r in await conn.fetch("SELECT error FROM invites WHERE tenant_id = $1", tenant)
        ]
        world.worker.stop()
        log = world.worker_log()

        assert all("could not be reached" in e for e in errors), errors
        assert "invite.retrying" in log
        assert "s3cret-smtp-pw" not in log and not any("s3cret-smtp-pw" in e for e in errors)
    finally:
        await conn.close()
        world.close()
