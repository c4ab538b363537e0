"""Invitations end to end: the Procfile's worker, Redis, PostgreSQL and a real SMTP server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.settings import get_settings
from tests.support.imports import export_rows, person, run_import, wait_final, write_csv
from tests.support.services import MailServer, WorkerProcess

pytestmark = pytest.mark.usefixtures("worker")


def rows_for(tenant: str, count: int = 3, **kwargs: str) -> list[list[str]]:
    return [person(f"P{i}", "Staff", f"p{i}.{tenant}@example.com", "Ops", **kwargs) for i in range(count)]


async def wait_for_invites(conn: Any, tenant: str, status: str, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        found = await conn.fetchval(
            "SELECT count(*) FROM invites WHERE tenant_id = $1 AND status = $2", tenant, status
        )
        if found == count:
            return
        if time.monotonic() > deadline:
            rows = await conn.fetch("SELECT id, status, error FROM invites WHERE tenant_id = $1", tenant)
            raise AssertionError(f"expected {count} invites {status}, have {[dict(r) for r in rows]}")
        await asyncio.sleep(0.1)


async def test_none_records_pending_invites_and_invites_send_sends_them(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    from producer.control import send_pending_invites

    status = await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant)), tenant, invites="none")

    assert status["invites"] == {"pending": 3, "scheduled": 0, "sent": 0, "failed": 0}
    assert {p["Invite status"] for p in (await export_rows(conn, tenant)).values()} == {"pending"}

    message = await send_pending_invites(get_settings(), tenant, None, None)

    assert message.startswith("3 invites will be sent now")
    await wait_for_invites(conn, tenant, "sent", 3)
    for i in range(3):
        assert len(smtp_server.to(f"p{i}.{tenant}@example.com")) == 1
    assert "no pending invites" in await send_pending_invites(get_settings(), tenant, None, None)


async def test_now_sends_each_person_one_email_in_their_language(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    rows = [
        person("Ada", "Lovelace", f"ada.{tenant}@example.com", language="en"),
        person("Émile", "Durand", f"emile.{tenant}@example.com", language="French"),
        person("Lena", "Schmidt", f"lena.{tenant}@example.com", language="de"),
    ]

    status = await run_import(conn, write_csv(tmp_path / "a.csv", rows), tenant, invites="now")
    await wait_for_invites(conn, tenant, "sent", 3)

    assert status["state"] == "done"
    (french,) = smtp_server.to(f"emile.{tenant}@example.com")
    assert french["Subject"].startswith("Vous êtes invité")
    (german,) = smtp_server.to(f"lena.{tenant}@example.com")
    assert german["Subject"].startswith("Einladung")
    body = french.get_body(("plain",)).get_content()
    token = body.split("https://people.example.com/accept/")[1].split()[0]
    stored = await conn.fetchval(
        "SELECT token_hash FROM invites i JOIN people p ON p.id = i.person_id WHERE p.email = $1",
        f"emile.{tenant}@example.com",
    )
    import hashlib

    assert hashlib.sha256(token.encode()).digest() == stored, "only the token's hash is stored"
    # Re-importing the same people invites nobody twice.
    await run_import(conn, write_csv(tmp_path / "b.csv", rows), tenant, invites="now")
    await asyncio.sleep(1)
    assert len(smtp_server.to(f"ada.{tenant}@example.com")) == 1


async def test_at_sends_at_the_time_and_not_before(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=4)

    status = await run_import(
        conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 2)), tenant, invites="at", send_at=send_at
    )

    assert status["invites"]["scheduled"] == 2
    assert smtp_server.to(f"p0.{tenant}@example.com") == []
    await wait_for_invites(conn, tenant, "sent", 2, timeout=30)
    sent_at = await conn.fetchval("SELECT min(sent_at) FROM invites WHERE tenant_id = $1", tenant)
    assert sent_at >= send_at


async def test_a_server_answering_451_is_retried_until_it_accepts(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    smtp_server.refusals.extend(["451 4.3.0 try again later"] * 2)

    await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 1)), tenant, invites="now")

    await wait_for_invites(conn, tenant, "sent", 1)
    assert len(smtp_server.to(f"p0.{tenant}@example.com")) == 1
    attempts = await conn.fetchval("SELECT attempts FROM invites WHERE tenant_id = $1", tenant)
    assert attempts == 3


async def test_a_550_marks_the_invite_failed_with_the_servers_reason(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    smtp_server.refusals.append("550 5.1.1 mailbox unavailable")

    status = await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 1)), tenant, invites="now")

    await wait_for_invites(conn, tenant, "failed", 1)
    error = await conn.fetchval("SELECT error FROM invites WHERE tenant_id = $1", tenant)
    assert "550" in error and "mailbox unavailable" in error
    assert (await wait_final(conn, status["id"]))["invites"]["failed"] == 1


async def test_a_send_message_delivered_twice_sends_one_email(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    from worker.actors import send_invite

    await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 1)), tenant, invites="now")
    await wait_for_invites(conn, tenant, "sent", 1)
    invite_id = await conn.fetchval("SELECT id FROM invites WHERE tenant_id = $1", tenant)

    send_invite.send(invite_id)
    send_invite.send(invite_id)
    # The worker drains the invites queue in order: a later invite's e-mail
    # arriving means the duplicates before it were handled.
    marker = f"marker.{tenant}@example.com"
    await run_import(conn, write_csv(tmp_path / "b.csv", [person("M", "K", marker)]), tenant, invites="now")
    await wait_for_invites(conn, tenant, "sent", 2)

    assert len(smtp_server.to(f"p0.{tenant}@example.com")) == 1


async def test_a_person_deactivated_before_the_send_is_not_invited(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    await run_import(
        conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 4)), tenant, invites="at", send_at=send_at
    )
    # p3 leaves before the invites go out (a sync of the other three).
    await run_import(conn, write_csv(tmp_path / "b.csv", rows_for(tenant, 3)), tenant, mode="sync")

    await wait_for_invites(conn, tenant, "sent", 3)
    await wait_for_invites(conn, tenant, "cancelled", 1)
    assert smtp_server.to(f"p3.{tenant}@example.com") == []


async def test_a_lost_delayed_message_is_recreated_from_the_database(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    from core import invites

    await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 2)), tenant, invites="none")
    # Scheduled in PostgreSQL, but its delayed message never reaches Redis.
    batch, count = await invites.schedule_pending_invites(conn, tenant, None, None)
    assert batch is not None and count == 2

    await wait_for_invites(conn, tenant, "sent", 2, timeout=30)
    assert len(smtp_server.to(f"p1.{tenant}@example.com")) == 1


async def test_cancelling_an_import_cancels_its_unsent_invites(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    from producer.control import cancel_import

    send_at = datetime.now(UTC) + timedelta(hours=2)
    status = await run_import(
        conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 2)), tenant, invites="at", send_at=send_at
    )

    message = await cancel_import(get_settings(), status["id"])

    assert "2 unsent invites are cancelled" in message
    await wait_for_invites(conn, tenant, "cancelled", 2)


async def test_invites_scheduled_across_a_worker_restart_are_sent_once(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer, worker: WorkerProcess
) -> None:
    send_at = datetime.now(UTC) + timedelta(seconds=3)
    await run_import(
        conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 2)), tenant, invites="at", send_at=send_at
    )

    worker.stop()
    worker.restart()

    await wait_for_invites(conn, tenant, "sent", 2, timeout=40)
    assert [len(smtp_server.to(f"p{i}.{tenant}@example.com")) for i in range(2)] == [1, 1]


async def test_invites_retry_sends_each_failed_invite_again_once(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    from producer.control import retry_failed_invites

    smtp_server.refusals += ["550 5.1.1 mailbox unavailable"] * 2
    status = await run_import(conn, write_csv(tmp_path / "a.csv", rows_for(tenant, 3)), tenant, invites="now")
    await wait_for_invites(conn, tenant, "failed", 2)
    await wait_for_invites(conn, tenant, "sent", 1)
    failed = {
        r["email"]
        for r in await conn.fetch(
            "SELECT p.email FROM invites i JOIN people p ON p.id = i.person_id"
            " WHERE i.tenant_id = $1 AND i.status = 'failed'",
            tenant,
        )
    }

    message = await retry_failed_invites(get_settings(), tenant, status["id"])
    again = await retry_failed_invites(get_settings(), tenant, status["id"])

    assert message.startswith("2 failed invites will be sent again now")
    assert again == f"no failed invites for import {status['id']} (of people still active)"
    await wait_for_invites(conn, tenant, "sent", 3)
    for i in range(3):
        address = f"p{i}.{tenant}@example.com"
        assert len(smtp_server.to(address)) == 1, address
    assert (await wait_final(conn, status["id"]))["invites"]["failed"] == 0
    errors = await conn.fetch("SELECT error FROM invites WHERE tenant_id = $1", tenant)
    assert [r["error"] for r in errors] == [None, None, None]
    assert len(failed) == 2
