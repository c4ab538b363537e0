"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``
package) driven by Playwright, against the Procfile's ``web:`` line and the
real worker.

The ``browser`` fixture (tests/integration/conftest.py) is Debian's Chromium.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from producer.web.tokens import create_token
from tests.support.imports import person, submit, wait_final, write_csv
from tests.support.services import WorkerProcess, wait_until

playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
TIMEOUT_MS = 120_000


@pytest.fixture
async def page(browser: Any, web_server: str, conn: Any) -> AsyncIterator[Any]:
    """A page logged in to the dashboard with a fresh operator token."""
    operator = (await create_token(conn, None, "browser")).secret
    context = await browser.new_context(base_url=web_server, viewport={"width": 1366, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()
    script_errors: list[str] = []
    tab.on("pageerror", lambda error: script_errors.append(str(error)))
    await tab.goto("/")
    assert tab.url.endswith("/login?next=%2F")
    await tab.fill("#token", operator)
    await tab.click("button[type=submit]")
    await tab.wait_for_url(web_server + "/")
    yield tab
    await context.close()
    assert script_errors == [], "the dashboard's script failed"


def people(tenant: str, count: int, team: str = "Ops") -> list[list[str]]:
    rows = [person("Mia", "Lead", f"mia@{tenant}.example.com", team, "Manager")]
    return rows + [person(f"P{i}", "Person", f"p{i}@{tenant}.example.com", team) for i in range(1, count)]


async def progress_of(page: Any, import_id: int) -> int:
    bar = page.locator(f'tr[data-import="{import_id}"] [role=progressbar]')
    return int(await bar.get_attribute("aria-valuenow"))


async def wait_progress_above(page: Any, import_id: int, floor: int) -> int:
    """Wait until the page itself (its refresh script) shows more than ``floor`` rows settled."""
    await page.wait_for_function(
        """([id, floor]) => {
            const bar = document.querySelector(`tr[data-import="${id}"] [role=progressbar]`);
            return bar && Number(bar.getAttribute("aria-valuenow")) > floor;
        }""",
        arg=[import_id, floor],
    )
    return await progress_of(page, import_id)


async def notice(page: Any) -> str:
    text: str = await page.locator(".flash.notice").inner_text()
    return text


async def cell(page: Any, queue: str, field: str) -> int:
    text = await page.locator(f'tr[data-queue="{queue}"] [data-field="{field}"]').inner_text()
    return int(text.replace(",", ""))


async def settled_rows(conn: Any, import_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status NOT IN ('pending', 'invalid')",
            import_id,
        )
    )


# --- progress --------------------------------------------------------------------------


@pytest.mark.timeout(600)  # a shared, loaded machine can make the 2,500 rows slow
async def test_a_running_import_moves_on_the_dashboard(
    page: Any, worker: WorkerProcess, conn: Any, tenant: str, tmp_path: Path
) -> None:
    # Enough rows to outlast a few 2-second refreshes at the test worker's pace
    # (1 process x 4 threads, about 120 rows/s on an idle 2-core machine).
    rows = 2_500
    worker.stop()  # the rows wait in Redis until the worker is back: the bar starts at 0
    try:
        import_id = await submit(write_csv(tmp_path / "big.csv", people(tenant, rows)), tenant)
        await page.reload()
        assert await progress_of(page, import_id) == 0
        assert await cell(page, "rows", "ready") >= rows
        assert (
            await page.locator(f'tr[data-import="{import_id}"] [data-field="state"]').inner_text()
            == "running"
        )
    finally:
        worker.restart()

    first = await wait_progress_above(page, import_id, 0)
    await page.screenshot(path=str(tmp_path / "running.png"))  # kept for a look when this test fails
    second = await wait_progress_above(page, import_id, first)

    assert 0 < first < second <= rows
    assert (await wait_final(conn, import_id, timeout=480))["rows"]["created"] == rows
    await page.wait_for_function(
        f"""() => document.querySelector('tr[data-import="{import_id}"] [data-field="state"]')
                  .textContent === "done" """
    )
    assert await progress_of(page, import_id) == rows


# --- actions ---------------------------------------------------------------------------


async def blocked_import(tenant: str, tmp_path: Path, conn: Any) -> int:
    """A sync import over the sweep guard, waiting for approval."""
    everyone = people(tenant, 4)
    await wait_final(conn, await submit(write_csv(tmp_path / "all.csv", everyone), tenant))
    import_id = await submit(write_csv(tmp_path / "one.csv", everyone[:1]), tenant, "sync")
    assert (await wait_final(conn, import_id))["state"] == "blocked"
    return import_id


@pytest.mark.usefixtures("worker")
async def test_cancel_cancels_the_import(page: Any, conn: Any, tenant: str, tmp_path: Path) -> None:
    import_id = await blocked_import(tenant, tmp_path, conn)
    await page.goto(f"/imports/{import_id}")

    await page.click('button[data-action="cancel"]')

    assert (await notice(page)).startswith(f"import {import_id} cancelled")
    assert await conn.fetchval("SELECT state FROM imports WHERE id = $1", import_id) == "cancelled"
    assert await page.locator('button[data-action="cancel"]').count() == 0


@pytest.mark.usefixtures("worker")
async def test_approve_sweep_resumes_a_blocked_import(
    page: Any, conn: Any, tenant: str, tmp_path: Path
) -> None:
    import_id = await blocked_import(tenant, tmp_path, conn)
    await page.goto(f"/imports/{import_id}")

    await page.click('button[data-action="approve"]')

    assert "sweep approved; deactivating 3 people" in await notice(page)
    status = await wait_final(conn, import_id)
    assert (status["state"], status["deactivated"]) == ("done", 3)


async def test_resume_resends_rows_redis_lost(
    page: Any, worker: WorkerProcess, conn: Any, tenant: str, tmp_path: Path
) -> None:
    from core.queues import current_broker

    broker = current_broker()
    worker.stop()
    try:
        import_id = await submit(write_csv(tmp_path / "p.csv", people(tenant, 30)), tenant)
        broker.flush("rows")  # Redis lost the import's row messages (this session's namespace only)
    finally:
        worker.restart()
    assert await settled_rows(conn, import_id) == 0
    await page.goto(f"/imports/{import_id}")

    await page.click('button[data-action="resume"]')

    assert await notice(page) == f"import {import_id}: re-sent 30 unsettled rows"
    status = await wait_final(conn, import_id)
    assert (status["state"], status["rows"]["created"]) == ("done", 30)


async def test_retry_puts_dead_letters_back_and_they_are_processed(
    page: Any, worker: WorkerProcess, conn: Any, tenant: str, tmp_path: Path
) -> None:
    from core.queues import current_broker

    broker = current_broker()
    namespace = broker.namespace
    worker.stop()
    try:
        import_id = await submit(write_csv(tmp_path / "p.csv", people(tenant, 5)), tenant)
        # One row message dead-lettered the way a worker does it: fetched, then nacked.
        consumer = broker.consume("rows", prefetch=1, timeout=100)
        message = wait_until(lambda: next(consumer), timeout=30, what="a row message")
        consumer.nack(message)
        dead_row = message.args[1]
    finally:
        worker.restart()
    deadline = time.monotonic() + 60
    while await settled_rows(conn, import_id) < 4:
        assert time.monotonic() < deadline, "the four rows still in the queue did not settle"
        await asyncio.sleep(0.1)
    assert broker.client.zcard(f"{namespace}:rows.XQ") == 1
    await page.reload()
    assert await cell(page, "rows", "dead") == 1

    await page.click('tr[data-queue="rows"] button')

    assert await notice(page) == "1 dead-lettered messages of queue rows are back on it"
    assert broker.client.zcard(f"{namespace}:rows.XQ") == 0
    status = await wait_final(conn, import_id)
    assert (status["state"], status["rows"]["created"]) == ("done", 5)
    row_status = await conn.fetchval(
        "SELECT status FROM import_rows WHERE import_id = $1 AND row_number = $2", import_id, dead_row
    )
    assert row_status == "created"


@pytest.mark.usefixtures("worker")
async def test_send_pending_invites_sends_them(
    page: Any, conn: Any, tenant: str, tmp_path: Path, smtp_server: Any
) -> None:
    team = people(tenant, 3)
    import_id = await submit(write_csv(tmp_path / "p.csv", team), tenant)
    assert (await wait_final(conn, import_id))["invites"]["pending"] == 3
    await page.goto(f"/imports/{import_id}")

    await page.click('button[data-action="send-invites"]')

    assert (await notice(page)).startswith("3 invites will be sent now")
    addresses = [row[2] for row in team]
    deadline = time.monotonic() + 60
    while not all(smtp_server.to(address) for address in addresses):
        assert time.monotonic() < deadline, "the invites did not reach the SMTP server"
        await asyncio.sleep(0.1)
    assert [len(smtp_server.to(address)) for address in addresses] == [1, 1, 1]
    # An invite is marked sent after the SMTP server has taken it: wait for the marks.
    query = (
        "SELECT count(*) FILTER (WHERE status = 'sent') AS sent, count(*) AS every FROM invites"
        " WHERE import_id = $1"
    )
    while (counts := await conn.fetchrow(query, import_id))["sent"] < 3:
        assert time.monotonic() < deadline, f"the invites were not all marked sent: {dict(counts)}"
        await asyncio.sleep(0.1)
    assert (counts["sent"], counts["every"]) == (3, 3)


# --- how it looks ----------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.usefixtures("worker")
async def test_screenshot_of_the_dashboard(page: Any, conn: Any, tenant: str, tmp_path: Path) -> None:
    bad = [person("Bad", "Row", "not-an-email"), person("", "Nameless", f"x@{tenant}.example.com")]
    import_id = await submit(write_csv(tmp_path / "p.csv", people(tenant, 8) + bad), tenant)
    await wait_final(conn, import_id)
    await page.reload()
    await page.locator(f'tr[data-import="{import_id}"]').wait_for()

    shot = tmp_path / "dashboard.png"
    await page.screenshot(path=str(shot), full_page=True)
    await page.goto(f"/imports/{import_id}")
    detail = tmp_path / "import.png"
    await page.screenshot(path=str(detail), full_page=True)

    for path in (shot, detail):
        width, height = png_size(path)
        assert width == 1366 and height >= 400, (path, width, height)
        # A blank or broken page compresses to a few kilobytes; a rendered one does not.
        assert path.stat().st_size > 30_000, (path, path.stat().st_size)
    assert await page.locator("#failed-rows tbody tr").count() == 2
