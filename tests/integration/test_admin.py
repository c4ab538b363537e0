"""The tenant admins' pages over HTTP (in process, real PostgreSQL and Redis): who
gets in, the cookie and CSRF rules, uploads refused in the admin's words, and one
tenant's admin kept out of another's imports, uploads and column choices. The
browser tests (test_admin_browser.py) click through the whole flow."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from core.settings import Settings
from producer.web.admin.session import COOKIE, TENANT_COOKIE
from producer.web.app import create_app
from producer.web.operators import csrf_token
from producer.web.tokens import create_token
from tests.support.imports import person, run_import, write_csv

HTML = {"Accept": "text/html"}


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings.from_env(), draft_dir=str(tmp_path / "drafts"), api_max_upload_bytes=20_000
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://people") as http,
    ):
        yield http


async def admin_token(conn: Any, tenant: str, label: str = "HR admin") -> str:
    return (await create_token(conn, tenant, label, admin=True)).secret


async def sign_in(client: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await client.post("/admin/login", data={"token": secret, "next": "/admin"})


def csv_file(tmp_path: Path, tenant: str, name: str = "people.csv", header: list[str] | None = None) -> Path:
    rows = [
        person("Ann", "Lee", f"ann@{tenant}.example.com", "Ops"),
        person("Bo", "Ng", f"bo@{tenant}.example.com"),
    ]
    if header is None:
        return write_csv(tmp_path / name, rows)
    return write_csv(tmp_path / name, [[*row, "x"] for row in rows], header)


async def upload(
    client: httpx.AsyncClient, secret: str, path: Path, csrf: str | None = None
) -> httpx.Response:
    form = {"csrf": csrf_token(secret) if csrf is None else csrf}
    with path.open("rb") as stream:
        return await client.post("/admin/uploads", data=form, files={"file": (path.name, stream, "text/csv")})


async def test_an_admin_token_signs_in_and_a_service_token_is_refused(
    client: httpx.AsyncClient, conn: Any, tenant: str
) -> None:
    anonymous = await client.get("/admin", headers=HTML)
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/admin/login?next=%2Fadmin")

    service = (await create_token(conn, tenant, "etl")).secret
    refused = await sign_in(client, service)
    assert refused.status_code == 403 and "for programs" in refused.text and "--admin" in refused.text
    assert COOKIE not in refused.cookies
    unknown = await sign_in(client, "bi_" + "x" * 43)
    assert unknown.status_code == 401 and "not valid" in unknown.text

    signed = await sign_in(client, await admin_token(conn, tenant))
    assert (signed.status_code, signed.headers["location"]) == (303, "/admin")
    start = await client.get("/admin")
    assert start.status_code == 200 and "Download the template" in start.text and tenant in start.text
    template = await client.get("/admin/template.csv")
    assert template.text.splitlines()[0].startswith("First name,Last name,Email")


@pytest.mark.usefixtures("worker")
async def test_an_operator_acts_only_for_a_tenant_chosen_explicitly(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    done = await run_import(conn, csv_file(tmp_path, tenant), tenant)
    operator = (await create_token(conn, None, "ops")).secret
    signed = await sign_in(client, operator)
    assert signed.headers["location"] == "/admin/tenant"
    assert (await client.get("/admin")).headers["location"] == "/admin/tenant"
    chooser = await client.get("/admin/tenant")
    assert f'<option value="{tenant}">' in chooser.text

    form = {"csrf": csrf_token(operator), "tenant": "no-such-tenant"}
    unknown = await client.post("/admin/tenant", data=form)
    assert unknown.status_code == 400 and "no tenant 'no-such-tenant'" in html.unescape(unknown.text)
    chosen = await client.post("/admin/tenant", data=form | {"tenant": tenant})
    assert chosen.cookies[TENANT_COOKIE] == tenant
    history = await client.get("/admin/imports")
    assert f'data-import="{done["id"]}"' in history.text and "Operator · change tenant" in history.text


async def test_forms_need_the_session_csrf_token(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    secret = await admin_token(conn, tenant)
    await sign_in(client, secret)
    forged = await upload(client, secret, csv_file(tmp_path, tenant), csrf="0" * 64)
    assert forged.status_code == 403 and "reload it" in forged.text
    other_site = await client.post(
        "/admin/tenant", data={"csrf": csrf_token(secret)}, headers={"Origin": "https://evil.example"}
    )
    assert other_site.status_code == 403 and "another site" in other_site.text
    assert list((tmp_path / "drafts").iterdir()) == []  # the forged upload was not kept


async def test_uploads_refused_say_why(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    secret = await admin_token(conn, tenant)
    await sign_in(client, secret)
    big = tmp_path / "big.csv"
    big.write_text("First name,Last name,Email\n" + "Ann,Lee,ann@example.com\n" * 2_000)
    too_large = await upload(client, secret, big)
    assert too_large.status_code == 413 and "larger than" in too_large.text and "Split it" in too_large.text

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    refused = await upload(client, secret, empty)
    assert refused.status_code == 400 and "empty.csv is empty" in refused.text

    no_file = await client.post("/admin/uploads", data={"csrf": csrf_token(secret)})
    assert no_file.status_code == 400 and "Choose a file" in no_file.text
    assert "Traceback" not in too_large.text + refused.text + no_file.text


@pytest.mark.usefixtures("worker")
async def test_another_tenants_imports_and_uploads_are_not_found(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    other = tenant + "-b"
    theirs = await run_import(conn, csv_file(tmp_path, other, "theirs.csv"), other)
    their_secret = await admin_token(conn, other, "B admin")
    await sign_in(client, their_secret)
    their_upload = await upload(client, their_secret, csv_file(tmp_path, other, "draft.csv"))
    draft_path = their_upload.headers["location"]

    mine = await admin_token(conn, tenant)
    client.cookies.clear()
    await sign_in(client, mine)
    for path in (f"/admin/imports/{theirs['id']}", f"/admin/imports/{theirs['id']}/errors.csv", draft_path):
        answer = await client.get(path)
        assert answer.status_code == 404, path
    assert (await client.get(f"/admin/imports/{theirs['id']}.json")).status_code == 404
    cancel = await client.post(f"/admin/imports/{theirs['id']}/cancel", data={"csrf": csrf_token(mine)})
    assert cancel.status_code == 404
    assert (await client.get(f"/admin/imports/{theirs['id']}/undo")).status_code == 404
    undo = await client.post(f"/admin/imports/{theirs['id']}/undo", data={"csrf": csrf_token(mine)})
    assert undo.status_code == 404
    assert f'data-import="{theirs["id"]}"' not in (await client.get("/admin/imports")).text
    # The tenant cookie is an operator's choice only: an admin's token decides its tenant.
    client.cookies.set(TENANT_COOKIE, other, path="/admin")
    assert (await client.get(f"/admin/imports/{theirs['id']}")).status_code == 404
    assert re.search(
        r"<a class=\"brand\"[^>]*>People import <span>" + re.escape(tenant), (await client.get("/admin")).text
    )


@pytest.mark.usefixtures("worker")
async def test_an_admin_previews_the_undo_then_undoes_the_import(
    client: httpx.AsyncClient, conn: Any, tenant: str, tmp_path: Path
) -> None:
    done = await run_import(conn, csv_file(tmp_path, tenant), tenant)
    secret = await admin_token(conn, tenant)
    await sign_in(client, secret)

    page = await client.get(f"/admin/imports/{done['id']}")
    preview = await client.get(f"/admin/imports/{done['id']}/undo")
    undone = await client.post(f"/admin/imports/{done['id']}/undo", data={"csrf": csrf_token(secret)})

    assert 'id="undo-preview"' in page.text and 'data-action="undo"' in page.text
    assert preview.status_code == 200
    assert re.search(r'data-count="deactivated"><strong>2</strong>', preview.text), preview.text
    assert await conn.fetchval("SELECT count(*) FROM imports WHERE undoes = $1", done["id"]) == 1
    assert undone.status_code == 303
    undo_page = undone.headers["location"]
    assert undo_page.endswith("?done=undo") and undo_page != f"/admin/imports/{done['id']}?done=undo"
    shown = await client.get(undo_page)
    assert "This is the undo of your import" in shown.text and 'data-action="undo"' not in shown.text
    assert f"<h1>Undo of import {done['id']} " in shown.text
    history = await client.get("/admin/imports")
    assert f"undo of import {done['id']}</a>" in history.text
