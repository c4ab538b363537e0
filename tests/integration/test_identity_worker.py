"""A tenant's domain migration through the Procfile's worker: invitations follow the people.

Real PostgreSQL, Redis, SMTP server and worker. Invitations not yet sent go to the new
address; one already sent is reported, and ``invites send --resend-renamed`` sends it to
the new address; the import's event carries the new addresses' count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.settings import get_settings
from producer.control import send_pending_invites
from tests.integration.test_invites import wait_for_invites
from tests.support.imports import export_rows, person, run_import, write_csv
from tests.support.services import MailServer

pytestmark = pytest.mark.usefixtures("worker")


def staff(tenant: str, domain: str, names: str) -> list[list[str]]:
    return [
        person(name, "Staff", f"{name.lower()}.{tenant}@{domain}", "Ops", employee_id=f"E-{name}")
        for name in names
    ]


async def test_invitations_follow_a_domain_migration(
    conn: Any, tmp_path: Path, tenant: str, smtp_server: MailServer
) -> None:
    invited = await run_import(
        conn,
        write_csv(tmp_path / "a.csv", staff(tenant, "old.example", "AB")),
        tenant,
        invites="now",
        match_by="employee-id",
    )
    await wait_for_invites(conn, tenant, "sent", 2)
    await run_import(conn, write_csv(tmp_path / "b.csv", staff(tenant, "old.example", "ABCD")), tenant)
    assert invited["state"] == "done"

    status = await run_import(
        conn, write_csv(tmp_path / "c.csv", staff(tenant, "new.example", "ABCD")), tenant, "sync"
    )

    assert status["state"] == "done" and status["deactivated"] == 0
    assert (status["rows"]["created"], status["rows"]["email_changed"]) == (0, 4)
    assert status["invites_to_old_address"] == 2  # A and B were invited at their old address
    assert set(await export_rows(conn, tenant)) == {f"{n}.{tenant}@new.example" for n in "abcd"}
    payload = await conn.fetchval(
        "SELECT payload FROM webhook_events WHERE import_id = $1 AND type = 'import.completed'", status["id"]
    )
    assert payload["data"]["import"]["rows"]["email_changed"] == 4

    # C and D's invitations, pending since before, go to the address they have now.
    assert (await send_pending_invites(get_settings(), tenant, None, None)).startswith("2 invites")
    await wait_for_invites(conn, tenant, "sent", 4)
    for name in "cd":
        assert len(smtp_server.to(f"{name}.{tenant}@new.example")) == 1
        assert smtp_server.to(f"{name}.{tenant}@old.example") == []
    # A and B's went to the old one; sent again, to the new one, once.
    message = await send_pending_invites(get_settings(), tenant, None, None, resend_renamed=True)
    assert message.startswith("2 invites will be sent again, to the new address, now")
    await wait_for_invites(conn, tenant, "sent", 4)
    for name in "ab":
        assert len(smtp_server.to(f"{name}.{tenant}@old.example")) == 1
        assert len(smtp_server.to(f"{name}.{tenant}@new.example")) == 1
    again = await send_pending_invites(get_settings(), tenant, None, None, resend_renamed=True)
    assert again.startswith("no invites sent to an address their person no longer has")
