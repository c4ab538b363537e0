"""Rows that change nothing settle when the file is recorded, and a person written since goes back.

Real PostgreSQL (the rows applied as the worker applies them, without a broker), then the
Procfile's worker for the path where finalizing sends rows back to the workers. The
comparison itself is held to the review's and the worker's rule by the generated cases
of tests/integration/test_vocabulary.py; here: what the settled rows count for (status,
events, managers, the sweep, invites), and a person changed between the recording and
the end of the import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core import imports, outbox
from core.intake.reading import open_source
from core.intake.submit import record_import
from producer.reports import import_status
from tests.support.imports import apply_import, export_rows, person, request_of, wait_final, write_csv

STAFF = [
    person("Ann", "Lee", "ann@example.com", "Sales", "manager", title="Lead"),
    person("Bob", "Kim", "bob@example.com", "Sales", title="Dev", secondary="Ops"),
    person("Cy", "Day", "cy@example.com", "Ops", title="Dev"),
    person("Di", "Orr", "di@example.com", "Ops", title="Dev", language="fr"),
]


async def _stored(conn: Any, tmp_path: Path, tenant: str, **options: Any) -> Path:
    path = write_csv(tmp_path / "staff.csv", STAFF)
    await apply_import(conn, path, tenant, "upsert", **options)
    return path


async def _rows(conn: Any, import_id: int) -> dict[str, Any]:
    found = await conn.fetch(
        "SELECT email, status, person_id, person_version IS NOT NULL AS at_recording, settled_at"
        " FROM import_rows WHERE import_id = $1",
        import_id,
    )
    return {r["email"]: dict(r) for r in found}


@pytest.mark.parametrize("mode", ["upsert", "sync"])
async def test_an_unchanged_file_settles_when_recorded_and_sends_no_message(
    conn: Any, tmp_path: Path, tenant: str, mode: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)
    people = {
        r["email"]: r["id"]
        for r in await conn.fetch("SELECT id, email FROM people WHERE tenant_id = $1", tenant)
    }

    applied = await apply_import(conn, path, tenant, mode)

    assert applied["state"] == "done" and applied["messages"] == 0 and applied["deactivated"] == 0
    rows = await _rows(conn, applied["id"])
    assert {e: (r["status"], r["person_id"], r["at_recording"]) for e, r in rows.items()} == {
        e: ("unchanged", people[e], True) for e in people
    }
    assert all(r["settled_at"] is not None for r in rows.values())
    status = await import_status(conn, applied["id"])
    assert (status["rows"]["total"], status["rows"]["unchanged"]) == (4, 4)
    assert (status["rows"]["created"], status["rows"]["updated"], status["rows"]["pending"]) == (0, 0, 0)
    payload = await conn.fetchval(
        "SELECT payload FROM webhook_events WHERE import_id = $1 AND type = 'import.completed'", applied["id"]
    )
    assert payload["data"]["import"]["rows"]["unchanged"] == 4


async def test_only_the_rows_that_change_something_travel(conn: Any, tmp_path: Path, tenant: str) -> None:
    await _stored(conn, tmp_path, tenant)
    changed = [list(row) for row in STAFF]
    changed[1][3] = "Lead"  # Bob's title
    changed[2][4] = "New Team"  # Cy to a team that does not exist yet
    changed.append(person("Eve", "Ng", "eve@example.com", "Ops"))

    applied = await apply_import(conn, write_csv(tmp_path / "next.csv", changed), tenant, "sync")

    assert applied["messages"] == 3
    assert applied["statuses"] == {2: "unchanged", 3: "updated", 4: "updated", 5: "unchanged", 6: "created"}
    assert applied["recorded"] == [2, 5]
    exported = await export_rows(conn, tenant)
    assert (exported["bob@example.com"]["Job title"], exported["cy@example.com"]["Primary team"]) == (
        "Lead",
        "New Team",
    )


async def test_in_add_only_nothing_settles_at_recording(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = await _stored(conn, tmp_path, tenant)
    applied = await apply_import(conn, path, tenant, "add-only")
    assert applied["recorded"] == [] and set(applied["statuses"].values()) == {"skipped"}


async def test_a_deactivated_person_is_reactivated_by_their_unchanged_row(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)
    await conn.execute(
        "UPDATE people SET status = 'deactivated', deactivated_at = now()"
        " WHERE tenant_id = $1 AND email = 'cy@example.com'",
        tenant,
    )
    applied = await apply_import(conn, path, tenant, "upsert")
    assert applied["statuses"][4] == "updated" and 4 not in applied["recorded"]
    assert (
        await conn.fetchval(
            "SELECT status FROM people WHERE email = 'cy@example.com' AND tenant_id = $1", tenant
        )
        == "active"
    )


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE people SET job_title = 'Changed by an admin'"
        " WHERE tenant_id = $1 AND email = 'bob@example.com'",
        "UPDATE people SET status = 'deactivated', deactivated_at = now()"
        " WHERE tenant_id = $1 AND email = 'bob@example.com'",
        "UPDATE people SET secondary_team_ids = '{}' WHERE tenant_id = $1 AND email = 'bob@example.com'",
    ],
    ids=["title", "deactivated", "teams"],
)
async def test_a_person_written_after_the_recording_gets_the_files_values_after_all(
    conn: Any, tmp_path: Path, tenant: str, edit: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)
    before = await export_rows(conn, tenant)

    async def admin_edits(import_id: int) -> None:
        # Between the recording (which found Bob unchanged) and the end of the import.
        assert (await _rows(conn, import_id))["bob@example.com"]["status"] == "unchanged"
        await conn.execute(edit, tenant)

    applied = await apply_import(conn, path, tenant, "sync", before_finalize=admin_edits)

    assert applied["reopened"] == 1 and applied["messages"] == 1 and applied["state"] == "done"
    assert applied["statuses"] == {2: "unchanged", 3: "updated", 4: "unchanged", 5: "unchanged"}
    assert await export_rows(conn, tenant) == before  # the file's values, Bob's included
    status = await import_status(conn, applied["id"])
    assert (status["rows"]["unchanged"], status["rows"]["updated"]) == (3, 1)
    assert await conn.fetchval("SELECT unchanged_at_recording FROM imports WHERE id = $1", applied["id"]) == 3
    # The update is recorded for an undo, as any other.
    changes = await conn.fetchval("SELECT count(*) FROM import_changes WHERE import_id = $1", applied["id"])
    assert changes == 1


async def test_a_person_merely_locked_meanwhile_is_not_sent_again(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)

    async def lock(import_id: int) -> None:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM people WHERE tenant_id = $1 FOR UPDATE", tenant)

    applied = await apply_import(conn, path, tenant, "upsert", before_finalize=lock)
    assert (applied["reopened"], applied["messages"]) == (0, 0)


async def test_settled_rows_keep_their_teams_manager_and_are_in_the_file_for_the_sweep(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)
    await apply_import(
        conn, write_csv(tmp_path / "more.csv", [person("Zed", "Up", "zed@example.com", "Ops")]), tenant
    )
    # An admin took Sales' manager away; the file still says Ann manages it.
    await conn.execute("UPDATE teams SET manager_id = NULL WHERE tenant_id = $1 AND name = 'Sales'", tenant)

    applied = await apply_import(conn, path, tenant, "sync")

    assert applied["messages"] == 0 and applied["deactivated"] == 1
    exported = await export_rows(conn, tenant)
    assert exported["bob@example.com"]["Manager email"] == "ann@example.com"
    statuses = {
        r["email"]: r["status"]
        for r in await conn.fetch("SELECT email, status FROM people WHERE tenant_id = $1", tenant)
    }
    assert statuses == {**{r[2]: "active" for r in STAFF}, "zed@example.com": "deactivated"}


async def test_the_people_of_settled_rows_are_invited_as_unchanged_rows_were(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)
    # Only Ann's invitation stands: the others' were cancelled (which does not count as invited).
    await conn.execute(
        "UPDATE invites SET status = 'cancelled' WHERE tenant_id = $1"
        " AND person_id <> (SELECT id FROM people WHERE tenant_id = $1 AND email = 'ann@example.com')",
        tenant,
    )

    applied = await apply_import(conn, path, tenant, "upsert", invites="now")

    assert applied["messages"] == 0
    invited = await conn.fetch(
        "SELECT p.email FROM invites i JOIN people p ON p.id = i.person_id"
        " WHERE i.import_id = $1 ORDER BY p.email",
        applied["id"],
    )
    # Everyone named without an invitation standing; Ann's stands.
    assert [r["email"] for r in invited] == ["bob@example.com", "cy@example.com", "di@example.com"]


@pytest.mark.usefixtures("worker")
async def test_through_the_worker_a_person_written_after_the_recording_is_applied(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    path = await _stored(conn, tmp_path, tenant)
    with open_source(path) as source:
        import_id = await record_import(conn, request_of(tenant, "sync", {}), source)
    # After the comparison, before any worker ran: Di's language moved.
    await conn.execute(
        "UPDATE people SET language = 'de' WHERE tenant_id = $1 AND email = 'di@example.com'", tenant
    )
    assert await imports.start_next_import(conn, tenant) == import_id
    await outbox.dispatch_rows(conn, import_id)  # nothing pending: it claims the finalizing step

    status = await wait_final(conn, import_id)

    assert status["state"] == "done"
    assert (status["rows"]["unchanged"], status["rows"]["updated"]) == (3, 1)
    exported = await export_rows(conn, tenant)
    assert exported["di@example.com"]["Language"] == "fr"
    assert (
        await conn.fetchval(
            "SELECT status FROM import_rows WHERE import_id = $1 AND email = 'di@example.com'", import_id
        )
        == "updated"
    )
