"""The "Automatic imports" pages in a real browser (Debian's Chromium through Playwright), against
the Procfile's ``web:`` line, the real worker and asyncssh's SFTP server on loopback.

An admin configures a nightly SFTP pull: gives the server's address, checks the key the
server presents and confirms it, fills in the login, the schedule and the settings, saves,
tests the connection. The night's tick comes (made due by the test) with a broken file: the
history says the run stopped and why. A good file, "Run now": the import is done and the
history names the source. Screenshots at 1280 and 390 px go to ``.screenshots/sources-*.png``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_admin_browser import SHOTS, TIMEOUT_MS, no_sideways_scroll, signed_in

from producer.web.tokens import create_token
from tests.support.imports import person, wait_final, write_csv
from tests.support.sources import SftpServer


@pytest.fixture
async def context(browser: Any, web_server: str) -> AsyncIterator[Any]:
    ctx = await browser.new_context(base_url=web_server, viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    ctx.on("weberror", lambda error: errors.append(str(error.error)))
    yield ctx
    await ctx.close()
    assert errors == [], "a page's script failed"


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    (tmp_path / "sftp" / "exports").mkdir(parents=True)
    server = SftpServer(tmp_path / "sftp")
    server.start()
    yield server
    server.close()


async def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(SHOTS / f"sources-{name}.png"), full_page=True)


async def until_outcome(tab: Any, conn: Any, source_id: int, count: int) -> str:
    """Reload the source's page until it lists ``count`` ended runs; return the newest's outcome."""
    deadline = time.monotonic() + 60
    query = "SELECT outcome FROM source_runs WHERE source_id = $1 AND outcome IS NOT NULL ORDER BY id DESC"
    while len(ended := await conn.fetch(query, source_id)) < count:
        assert time.monotonic() < deadline, "no run ended within 60 s"
        await asyncio.sleep(0.2)
    await tab.reload()
    return str(ended[0]["outcome"])


@pytest.mark.timeout(300)
async def test_an_admin_configures_a_nightly_sftp_pull_tests_it_and_the_history_shows_the_night(
    context: Any, worker: Any, conn: Any, tenant: str, tmp_path: Path, sftp: SftpServer
) -> None:
    secret = (await create_token(conn, tenant, "Ada (HR)", admin=True)).secret
    tab = await signed_in(context, secret)
    await tab.get_by_role("link", name="Automatic imports").click()
    await tab.wait_for_url("**/admin/sources")
    await shot(tab, "1-empty")
    await tab.get_by_label("Where the file is").fill(sftp.url("exports/people-*.csv"))
    await tab.get_by_role("button", name="Check the server").click()
    await tab.wait_for_url("**/admin/sources/check")
    assert await tab.locator("[data-field=fingerprint]").inner_text() == sftp.fingerprint
    await tab.get_by_label("Name").fill("Workday nightly")
    await tab.get_by_label("Password").fill(sftp.password)
    await tab.get_by_label("Add and update, and deactivate everyone who is not in the file").check()
    await shot(tab, "2-confirm-key")
    await tab.set_viewport_size({"width": 390, "height": 800})
    assert await no_sideways_scroll(tab)
    await shot(tab, "2-confirm-key-phone")
    await tab.set_viewport_size({"width": 1280, "height": 800})
    await tab.get_by_role("button", name="Save").click()
    assert "tick the box" in await tab.locator(".flash.problem").inner_text()  # not confirmed: not saved
    await tab.get_by_label("Password").fill(sftp.password)
    await tab.get_by_label("This is my server's key").check()
    await tab.get_by_role("button", name="Save").click()
    await tab.wait_for_url("**/admin/sources/*?done=added")
    source_id = int(tab.url.split("/")[-1].split("?")[0])

    rows = [person("Mia", "Lead", f"mia.{tenant}@example.com", "Ops", "Manager")]
    rows += [person(f"P{i}", "Person", f"p{i}.{tenant}@example.com", "Ops") for i in range(3)]
    sftp.drop("exports/people-1.csv", write_csv(tmp_path / "good.csv", rows).read_text(), age_s=600)
    await tab.get_by_role("button", name="Test the connection").click()
    assert "The connection works" in await tab.locator("#tested").inner_text()
    await tab.get_by_role("button", name="Run now").click()
    assert await until_outcome(tab, conn, source_id, 1) == "imported"
    (imported,) = await conn.fetch("SELECT import_id FROM source_runs WHERE source_id = $1", source_id)
    assert (await wait_final(conn, imported["import_id"]))["state"] == "done"

    # The night: the HR system drops a file with its e-mail column renamed; the tick comes.
    broken = write_csv(
        tmp_path / "broken.csv", [["Mia", "Lead", "x@example.com"]], ["First", "Last", "Work contact"]
    )
    sftp.drop("exports/people-2.csv", broken.read_text())
    await conn.execute(
        "UPDATE sources SET next_run_at = now() - interval '1 second' WHERE id = $1", source_id
    )
    assert await until_outcome(tab, conn, source_id, 2) == "blocked"
    await shot(tab, "3-source")
    await tab.set_viewport_size({"width": 390, "height": 800})
    assert await no_sideways_scroll(tab)
    await shot(tab, "3-source-phone")
    await tab.set_viewport_size({"width": 1280, "height": 800})

    await tab.get_by_role("link", name="History").click()
    stopped = tab.locator("#stopped-runs")
    assert "the file has no column for 'Email'" in await stopped.inner_text()
    first_import = tab.locator("#history tbody tr").first
    assert "Workday nightly (automatic)" in await first_import.inner_text()
    assert "done" in await first_import.inner_text()
    await shot(tab, "4-history")
    await tab.get_by_role("link", name="Automatic imports").click()
    assert "blocked" in await tab.locator("#sources").inner_text()
    await shot(tab, "5-list")
