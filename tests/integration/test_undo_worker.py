"""Undo through the Procfile's worker: invites, the one-undo rule, the HTTP API and the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.settings import Settings, get_settings
from producer.control import undo_import
from producer.web.app import create_app
from producer.web.tokens import create_token
from tests.integration.test_invites import rows_for, wait_for_invites
from tests.support.imports import person, run_import, wait_final, write_csv
from tests.support.services import subprocess_env

pytestmark = pytest.mark.usefixtures("worker")
BULK_IMPORT = str(Path(sys.executable).parent / "bulk-import")


async def test_invites_already_sent_are_reported_and_scheduled_ones_cancelled(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    sent = await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 2)), tenant, invites="now")
    await wait_for_invites(conn, tenant, "sent", 2)
    later = datetime.now(UTC) + timedelta(days=1)
    others = [person(f"Q{i}", "Staff", f"q{i}.{tenant}@example.com", "Ops") for i in range(3)]
    scheduled = await run_import(
        conn, write_csv(tmp_path / "b.csv", others), tenant, invites="at", send_at=later
    )
    assert scheduled["invites"]["scheduled"] == 3

    first_id, created, _ = await undo_import(get_settings(), scheduled["id"])
    first = await wait_final(conn, first_id)
    second_id, _, _ = await undo_import(get_settings(), sent["id"])
    second = await wait_final(conn, second_id)

    assert created and first["state"] == "done" and first["undo"]["invites_cancelled"] == 3
    assert (
        await conn.fetchval(
            "SELECT count(*) FROM invites WHERE import_id = $1 AND status = 'cancelled'", scheduled["id"]
        )
        == 3
    )
    assert (second["undo"]["deactivated"], second["undo"]["invites_sent"]) == (2, 2)
    # Each invite already sent is a line of the undo's report, and so is the
    # team nobody belongs to any more.
    assert (second["undo"]["not_restored"], second["undo"]["teams_left"]) == (3, 1)
    assert (
        await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1 AND status = 'active'", tenant)
        == 0
    )


async def test_asking_twice_returns_the_first_undo(conn: Any, tmp_path: Path, tenant: str) -> None:
    status = await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 2)), tenant)

    first = await undo_import(get_settings(), status["id"])
    await wait_final(conn, first[0])
    second = await undo_import(get_settings(), status["id"])

    assert first[1] and not second[1] and second[0] == first[0]
    assert f"has been undone by import {first[0]}" in second[2]


@pytest.fixture
async def client(database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings.from_env())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://api") as http,
    ):
        yield http


async def test_the_api_previews_then_undoes_and_hides_other_tenants(
    conn: Any, client: httpx.AsyncClient, tmp_path: Path, tenant: str
) -> None:
    status = await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 3)), tenant)
    mine = {"Authorization": "Bearer " + (await create_token(conn, tenant)).secret}
    theirs = {"Authorization": "Bearer " + (await create_token(conn, tenant + "-other")).secret}
    url = f"/api/imports/{status['id']}/undo"

    preview = await client.post(url, params={"dry_run": "true"}, headers=mine)
    hidden = await client.post(url, headers=theirs)
    started = await client.post(url, headers=mine)
    again = await client.post(url, headers=mine)

    assert preview.status_code == 200 and preview.json()["deactivated"] == 3
    assert hidden.status_code == 404
    assert started.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == started.json()["id"]
    done = await wait_final(conn, started.json()["id"])
    assert done["undo"]["deactivated"] == 3
    refused = await client.post(f"/api/imports/{done['id']}/undo", headers=mine)
    assert refused.status_code == 409 and "cannot be undone" in refused.json()["error"]


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BULK_IMPORT, *map(str, args)], env=subprocess_env(), capture_output=True, text=True, timeout=120
    )


async def test_the_cli_previews_then_undoes_and_waits(conn: Any, tmp_path: Path, tenant: str) -> None:
    rows = rows_for(tenant, 4)
    await run_import(conn, write_csv(tmp_path / "a.csv", rows), tenant)
    wrong = await run_import(conn, write_csv(tmp_path / "b.csv", rows[:3]), tenant, "sync")

    preview = await asyncio.to_thread(cli, "undo", wrong["id"], "--dry-run")
    done = await asyncio.to_thread(cli, "undo", wrong["id"], "--wait", "--json")

    assert preview.returncode == 0, preview.stderr
    assert "reactivate 1 it deactivated" in preview.stdout
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert (status["state"], status["undoes"], status["undo"]["reactivated"]) == ("done", wrong["id"], 1)
    shown = await asyncio.to_thread(cli, "status", status["id"])
    assert f"undo {status['id']} of import {wrong['id']} ({tenant}): done" in shown.stdout, shown.stderr
    assert "reactivated 1" in shown.stdout
    assert (
        await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1 AND status = 'active'", tenant)
        == 4
    )
