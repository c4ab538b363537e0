"""The tenant admin's import in a real browser: Debian's headless Chromium driven
by Playwright, against the Procfile's ``web:`` line, the real worker, PostgreSQL,
Redis and the session's SMTP server.

The whole flow as an admin meets it: sign in, upload a file with a column
without a match, map it, review the field-by-field changes, choose sync, meet
the sweep guard, approve, watch the import to done with invitations sent,
download the rows to fix, fix them, upload that file again (no mapping asked
the second time), and find both imports in the history. Screenshots of each
step go to ``.screenshots/`` at the project's root (``SCREENSHOTS_DIR``
overrides), to be looked at.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from producer.web.tokens import create_token
from tests.support.imports import person, run_import, submit, write_csv
from tests.support.services import ROOT, MailServer, WorkerProcess, wait_until

TIMEOUT_MS = 120_000
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or ROOT / ".screenshots")
HEADER = ["Name given", "Last name", "Email", "Job title", "Primary team", "Role", "Notes"]


@pytest.fixture
async def context(browser: Any, web_server: str) -> AsyncIterator[Any]:
    """A browser context on the web process, failing the test on any script error."""
    ctx = await browser.new_context(
        base_url=web_server, viewport={"width": 1280, "height": 800}, accept_downloads=True
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    ctx.on("weberror", lambda error: errors.append(str(error.error)))
    yield ctx
    await ctx.close()
    assert errors == [], "a page's script failed"


async def signed_in(context: Any, secret: str) -> Any:
    tab = await context.new_page()
    await tab.goto("/admin")
    assert "/admin/login" in tab.url
    await tab.get_by_label("Admin token").fill(secret)
    await tab.get_by_role("button", name="Sign in").click()
    await tab.wait_for_url("**/admin")
    return tab


async def shot(tab: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)


async def no_sideways_scroll(tab: Any) -> bool:
    return bool(await tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def rows_to_fix(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.timeout(300)
async def test_from_a_spreadsheet_to_people_in_and_invited(
    context: Any, worker: Any, smtp_server: MailServer, conn: Any, tenant: str, tmp_path: Path
) -> None:
    domain = f"{tenant}.example.com"
    staff = [person("Mia", "Lead", f"mia@{domain}", "Ops", "Manager", title="Lead")]
    staff += [person(f"P{i}", "Person", f"p{i}@{domain}", "Ops") for i in range(1, 4)]
    await run_import(conn, write_csv(tmp_path / "before.csv", staff), tenant)
    secret = (await create_token(conn, tenant, "Ada (HR)", admin=True)).secret
    upload = write_csv(
        tmp_path / "people.csv",
        [
            ["Mia", "Lead", f"mia@{domain}", "Head of Ops", "Ops", "Manager", "keep"],
            ["Noor", "Haddad", f"noor@{domain}", "Analyst", "Ops", "", "new"],
            ["Omar", "Diaz", f"omar@{domain}", "Analyst", "Sales", "", "new"],
            ["Zed", "Broken", "zed-at-example", "", "Ops", "", "typo"],
        ],
        HEADER,
    )

    tab = await signed_in(context, secret)
    await shot(tab, "1-start")
    await tab.set_input_files("#file", str(upload))
    await tab.get_by_role("button", name="Upload and check the columns").click()

    # Columns: "Name given" has no match, and First name, which is required, has no column.
    await tab.wait_for_url("**/columns")
    assert "No column holds First name" in await tab.locator("#missing").inner_text()
    assert await tab.locator('tr[data-column="Notes"] .tag-unmatched').count() == 1
    await shot(tab, "2-columns")
    await tab.get_by_label("Name given").select_option("first_name")
    await tab.get_by_role("button", name="Next: review the data").click()

    # Review: the counts, the rejected row, and what changes for Mia, field by field.
    await tab.wait_for_url("**/review")
    counts = await tab.locator("#counts").inner_text()
    assert "2 new" in counts and "1 updated" in counts and "1 row with errors" in counts
    assert "zed-at-example" in await tab.locator("#errors").inner_text()
    change = tab.locator(f'#changes tr[data-email="mia@{domain}"] li[data-field="job_title"]')
    assert await change.inner_text() == "Job title: Lead → Head of Ops"
    await shot(tab, "3-review")
    await tab.get_by_role("link", name="Next: settings").click()

    # Settings: sync would deactivate 3 of 6; the guard asks for approval.
    await tab.wait_for_url("**/settings**")
    await tab.get_by_label("Add and update, and deactivate everyone who is not in the file").check()
    await tab.get_by_label("Send invitations now").check()
    await tab.get_by_role("button", name="Start the import").click()
    guard = tab.locator("#guard")
    assert "deactivate 3 of 6 active people" in await guard.inner_text()
    assert f"p1@{domain}" in await guard.inner_text()
    await shot(tab, "4-guard")
    assert await tab.get_by_label("Send invitations now").is_checked()  # the choices survive the refusal
    await tab.get_by_label("I have checked this").check()
    await tab.get_by_role("button", name="Start the import").click()

    # Progress to done, the page following by itself.
    await tab.wait_for_url("**/admin/imports/*")
    import_id = int(tab.url.rsplit("/", 1)[1])
    await tab.locator('[data-field="state"]', has_text="Done").wait_for()
    await shot(tab, "5-done")
    summary = await tab.locator("#summary").inner_text()
    assert (
        "2 added" in summary
        and "1 updated" in summary
        and "3 deactivated" in summary
        and "1 rows to fix" in summary
    )
    people = {r["email"]: r for r in await conn.fetch("SELECT * FROM people WHERE tenant_id = $1", tenant)}
    assert people[f"noor@{domain}"]["first_name"] == "Noor"  # the mapped column
    assert people[f"mia@{domain}"]["job_title"] == "Head of Ops"
    assert {people[f"p{i}@{domain}"]["status"] for i in range(1, 4)} == {"deactivated"}
    wait_until(
        lambda: all(smtp_server.to(f"{name}@{domain}") for name in ("noor", "omar")),
        timeout=60,
        what="the invitations",
    )

    # The rows to fix: the file's own columns plus Row and Reason; fixed and uploaded again.
    async with tab.expect_download() as download_info:
        await tab.locator("#errors-file").click()
    text = Path(await (await download_info.value).path()).read_text(encoding="utf-8")
    (broken,) = rows_to_fix(text)
    assert broken["Email"] == "zed-at-example" and broken["Row"] == "5" and "Email" in broken["Reason"]
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(text.replace("zed-at-example", f"zed@{domain}"), encoding="utf-8")
    await tab.goto("/admin")
    await tab.set_input_files("#file", str(fixed))
    await tab.get_by_role("button", name="Upload and check the columns").click()
    await tab.wait_for_url("**/review")  # the columns were remembered: nothing to ask
    assert "1 new" in await tab.locator("#counts").inner_text()
    await tab.get_by_role("link", name="Next: settings").click()
    await tab.get_by_role("button", name="Start the import").click()
    await tab.locator('[data-field="state"]', has_text="Done").wait_for()
    zed = await conn.fetchrow("SELECT first_name, status FROM people WHERE email = $1", f"zed@{domain}")
    assert (zed["first_name"], zed["status"]) == ("Zed", "active")

    # The history: both imports, newest first, with who started them.
    await tab.get_by_role("link", name="History").click()
    history = tab.locator("#history tbody tr")
    assert await history.count() == 3
    assert "fixed.csv" in await history.nth(0).inner_text()
    assert (
        "people.csv" in await history.nth(1).inner_text() and "Ada (HR)" in await history.nth(1).inner_text()
    )
    await shot(tab, "6-history")
    await history.nth(1).get_by_role("link").click()
    assert tab.url.endswith(f"/admin/imports/{import_id}")


async def test_the_pages_fit_a_phone_and_work_from_the_keyboard(
    context: Any, conn: Any, tenant: str, tmp_path: Path
) -> None:
    secret = (await create_token(conn, tenant, "phone", admin=True)).secret
    tab = await context.new_page()
    await tab.set_viewport_size({"width": 390, "height": 844})
    await tab.goto("/admin/login")
    # Keyboard only: the token field has the focus, Enter signs in.
    await tab.keyboard.type(secret)
    await tab.keyboard.press("Enter")
    await tab.wait_for_url("**/admin")
    assert await no_sideways_scroll(tab)
    await shot(tab, "phone-start")

    file = write_csv(tmp_path / "team.csv", [person("Ann", "Lee", f"ann@{tenant}.example.com", "Ops")])
    await tab.set_input_files("#file", str(file))
    await tab.locator("#file").focus()
    await tab.keyboard.press("Tab")  # to the upload button
    await tab.keyboard.press("Enter")
    await tab.wait_for_url("**/review")
    assert await no_sideways_scroll(tab)
    await shot(tab, "phone-review")
    await tab_to(tab, "Next: settings")
    await tab.keyboard.press("Enter")
    await tab.wait_for_url("**/settings**")
    assert await no_sideways_scroll(tab)
    await tab_to(tab, "Start the import")
    await tab.keyboard.press("Enter")
    await tab.wait_for_url("**/admin/imports/*")
    assert await no_sideways_scroll(tab)


async def tab_to(tab: Any, text: str, presses: int = 60) -> None:
    """Press Tab until the control reading ``text`` has the focus."""
    for _ in range(presses):
        await tab.keyboard.press("Tab")
        if (await tab.evaluate("document.activeElement.textContent.trim()")) == text:
            return
    raise AssertionError(f"{text!r} cannot be reached with the Tab key")


@pytest.mark.timeout(600)  # a shared, loaded machine can make the rows slow
async def test_the_progress_moves_live_then_the_page_shows_the_result(
    context: Any, worker: WorkerProcess, conn: Any, tenant: str, tmp_path: Path
) -> None:
    # Enough rows to outlast a few refreshes at the test worker's pace (about 120 rows/s).
    rows = 2_000
    people = [person(f"P{i}", "Person", f"p{i}@{tenant}.example.com", "Ops") for i in range(rows)]
    tab = await signed_in(context, (await create_token(conn, tenant, "Ada", admin=True)).secret)
    worker.stop()  # the rows wait in Redis until the worker is back: the bar starts at 0
    try:
        import_id = await submit(write_csv(tmp_path / "many.csv", people), tenant)
        await tab.goto(f"/admin/imports/{import_id}")
        bar = tab.get_by_role("progressbar")
        assert await bar.get_attribute("aria-valuenow") == "0"
    finally:
        worker.restart()

    await tab.wait_for_function(
        "() => Number(document.querySelector('[role=progressbar]').getAttribute('aria-valuenow')) > 0"
    )
    await tab.locator('[data-field="eta"]', has_text="left").wait_for()
    assert re.fullmatch(r"[\d,]+ people/s", await tab.locator('[data-field="rate"]').inner_text())
    await shot(tab, "progress")
    await tab.locator('[data-field="state"]', has_text="Done").wait_for(timeout=480_000)
    assert f"{rows:,} added" in await tab.locator("#summary").inner_text()
    assert await tab.locator('[data-field="rate"]').count() == 0  # no rate once it has ended


@pytest.mark.usefixtures("worker")
async def test_an_admin_cannot_reach_another_tenants_imports_or_choices(
    context: Any, conn: Any, tenant: str, tmp_path: Path
) -> None:
    other = tenant + "-other"
    rows = [["Ann", "Lee", f"ann@{other}.example.com", "", "Ops", "", "x"]]
    theirs = await run_import(
        conn, write_csv(tmp_path / "theirs.csv", rows, HEADER), other, mapping={"Name given": "first_name"}
    )
    tab = await signed_in(context, (await create_token(conn, tenant, "mine", admin=True)).secret)

    # By URL: their import, its JSON and its errors file are not found.
    for path in (f"/admin/imports/{theirs['id']}.json", f"/admin/imports/{theirs['id']}/errors.csv"):
        answer = await tab.request.get(path)
        assert answer.status == 404, path
    answer = await tab.goto(f"/admin/imports/{theirs['id']}")
    assert answer.status == 404
    assert "There is no import" in await tab.locator("main").inner_text()

    # By form field: a cancel form of ours pointed at their import is refused, and it stays done.
    mine = await run_import(
        conn, write_csv(tmp_path / "mine.csv", [person("Bo", "Ng", f"bo@{tenant}.example.com")]), tenant
    )
    await tab.goto(f"/admin/imports/{mine['id']}")
    await tab.evaluate(
        """(id) => { const form = document.createElement("form"); form.method = "post";
                     form.action = `/admin/imports/${id}/cancel`;
                     const csrf = document.querySelector("input[name=csrf]").cloneNode();
                     form.append(csrf); document.body.append(form); form.submit(); }""",
        theirs["id"],
    )
    await tab.wait_for_url(f"**/admin/imports/{theirs['id']}/cancel")
    assert "There is no import" in await tab.locator("main").inner_text()
    assert await conn.fetchval("SELECT state FROM imports WHERE id = $1", theirs["id"]) == "done"

    # Their remembered column choice is theirs: the same header asks us again.
    await tab.goto("/admin")
    await tab.set_input_files("#file", str(write_csv(tmp_path / "ours.csv", rows, HEADER)))
    await tab.get_by_role("button", name="Upload and check the columns").click()
    await tab.wait_for_url("**/columns")
    assert await tab.locator('tr[data-column="Name given"] .tag-unmatched').count() == 1

    # Their people are not ours: our history is ours alone.
    await tab.goto("/admin/imports")
    assert await tab.locator(f'tr[data-import="{theirs["id"]}"]').count() == 0
    assert await tab.locator(f'tr[data-import="{mine["id"]}"]').count() == 1


async def test_pending_invitations_are_sent_from_the_result_page(
    context: Any, worker: WorkerProcess, smtp_server: MailServer, conn: Any, tenant: str, tmp_path: Path
) -> None:
    email = f"ivy@{tenant}.example.com"
    done = await run_import(conn, write_csv(tmp_path / "one.csv", [person("Ivy", "Moss", email)]), tenant)
    tab = await signed_in(context, (await create_token(conn, tenant, "Ada", admin=True)).secret)
    await tab.goto(f"/admin/imports/{done['id']}")
    assert await tab.locator("#invites").inner_text() == "Invitations: 1 pending."

    await tab.get_by_role("button", name="Send the 1 pending invitation now").click()

    assert await tab.locator(".flash.notice").inner_text() == "The pending invitations are on their way."
    wait_until(lambda: bool(smtp_server.to(email)), timeout=60, what="the invitation")
    # The invite is marked sent once the SMTP server has taken it: wait for the mark.
    deadline = time.monotonic() + 60
    while await conn.fetchval("SELECT status FROM invites WHERE import_id = $1", done["id"]) != "sent":
        assert time.monotonic() < deadline, "the invite was not marked sent"
        await asyncio.sleep(0.1)
    await tab.reload()
    assert await tab.locator("#invites").inner_text() == "Invitations: 1 sent."


@pytest.mark.timeout(300)
async def test_a_domain_migration_by_employee_id_from_the_settings_step(
    context: Any, worker: WorkerProcess, conn: Any, tenant: str, tmp_path: Path
) -> None:
    def staff(domain: str) -> list[list[str]]:
        return [
            person("Dana", "Cho", f"dana@{domain}", "Sales", "Manager", employee_id="E1"),
            *(person(f"P{i}", "Person", f"p{i}@{domain}", "Sales", employee_id=f"E{i}") for i in range(2, 5)),
        ]

    await run_import(conn, write_csv(tmp_path / "before.csv", staff(f"old.{tenant}.example")), tenant)
    tab = await signed_in(context, (await create_token(conn, tenant, "Ada (HR)", admin=True)).secret)
    await tab.set_input_files("#file", str(write_csv(tmp_path / "moved.csv", staff(f"new.{tenant}.example"))))
    await tab.get_by_role("button", name="Upload and check the columns").click()

    # By e-mail (the tenant never chose), new addresses under known ids are refused, saying why;
    # by Employee ID, they are renames.
    await tab.wait_for_url("**/review")
    assert "4 rows with errors" in await tab.locator("#counts").inner_text()
    assert "match people by employee id" in await tab.locator("#errors").inner_text()
    assert await tab.get_by_label("By e-mail address").is_checked()
    await tab.get_by_label("By Employee ID").check()
    await tab.get_by_role("button", name="Update the preview").click()
    counts = await tab.locator("#counts").inner_text()
    assert "0 new" in counts and "4 updated" in counts and "4 of them with a new e-mail address" in counts
    change = tab.locator(f'#changes tr[data-email="dana@new.{tenant}.example"] li[data-field="email"]')
    assert await change.inner_text() == f"Email: dana@old.{tenant}.example → dana@new.{tenant}.example"
    await shot(tab, "identity-review")
    await tab.get_by_role("link", name="Next: settings").click()

    # Settings: the key chosen on the review is the one preselected; sync deactivates nobody.
    await tab.wait_for_url("**/settings**")
    assert await tab.get_by_label("By Employee ID").is_checked()
    await tab.get_by_label("Add and update, and deactivate everyone who is not in the file").check()
    await shot(tab, "identity-settings")
    await tab.get_by_role("button", name="Start the import").click()
    await tab.wait_for_url("**/admin/imports/*")
    await tab.locator('[data-field="state"]', has_text="Done").wait_for()
    summary = await tab.locator("#summary").inner_text()
    assert "0 added" in summary and "4 updated" in summary and "0 deactivated" in summary
    assert "4 of them with a new e-mail address" in summary
    await shot(tab, "identity-done")
    managers = await conn.fetch(
        "SELECT p.email FROM teams t JOIN people p ON p.id = t.manager_id WHERE t.tenant_id = $1", tenant
    )
    assert [m["email"] for m in managers] == [f"dana@new.{tenant}.example"]

    # Remembered for the tenant: the next file's settings preselect it.
    await tab.goto("/admin")
    await tab.set_input_files("#file", str(write_csv(tmp_path / "again.csv", staff(f"new.{tenant}.example"))))
    await tab.get_by_role("button", name="Upload and check the columns").click()
    await tab.wait_for_url("**/review")
    assert await tab.get_by_label("By Employee ID").is_checked()
    assert "4 unchanged" in await tab.locator("#counts").inner_text()
