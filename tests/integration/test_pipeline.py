"""The pipeline end to end: producer → Redis → the Procfile's worker → PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.imports import export_rows, person, run_import, submit, wait_final, write_csv

pytestmark = pytest.mark.usefixtures("worker")

TEAM = [
    person("Mia", "Manager", "mia@example.com", "Sales", "Manager"),
    person("Leo", "Learner", "leo@example.com", "Sales"),
    person("Ann", "Other", "Ann@Example.com ", " sales ", "learner", secondary="Marketing; Support"),
    person("Tom", "Solo", "tom@example.com"),
]


async def test_upsert_creates_people_teams_and_managers(conn: Any, tmp_path: Path, tenant: str) -> None:
    status = await run_import(conn, write_csv(tmp_path / "people.csv", TEAM), tenant)

    assert status["state"] == "done"
    assert (status["rows"]["total"], status["rows"]["created"], status["rows"]["invalid"]) == (4, 4, 0)
    people = await export_rows(conn, tenant)
    assert set(people) == {"mia@example.com", "leo@example.com", "ann@example.com", "tom@example.com"}
    assert people["leo@example.com"]["Manager email"] == "mia@example.com"
    assert people["ann@example.com"]["Manager email"] == "mia@example.com"
    # Nobody manages themself; no team, no manager.
    assert people["mia@example.com"]["Manager email"] == ""
    assert people["tom@example.com"]["Manager email"] == ""
    # " sales " is the team first written "Sales": one team, the first spelling kept.
    assert people["ann@example.com"]["Primary team"] == "Sales"
    assert people["ann@example.com"]["Secondary team"] == "Marketing; Support"
    assert people["mia@example.com"]["Status"] == "active"


async def test_reimporting_the_same_file_changes_nothing(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)
    await run_import(conn, path, tenant)
    before = await export_rows(conn, tenant)

    status = await run_import(conn, path, tenant)

    assert status["state"] == "done"
    assert status["rows"]["unchanged"] == 4
    assert status["rows"]["created"] == status["rows"]["updated"] == 0
    assert await export_rows(conn, tenant) == before


async def test_upsert_updates_changed_people_only(conn: Any, tmp_path: Path, tenant: str) -> None:
    await run_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    changed = [TEAM[0], person("Leo", "Learner", "leo@example.com", "Sales", title="Rep"), *TEAM[2:]]

    status = await run_import(conn, write_csv(tmp_path / "b.csv", changed), tenant)

    assert (status["rows"]["updated"], status["rows"]["unchanged"]) == (1, 3)
    assert (await export_rows(conn, tenant))["leo@example.com"]["Job title"] == "Rep"


async def test_add_only_leaves_existing_people_untouched(conn: Any, tmp_path: Path, tenant: str) -> None:
    await run_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    rows = [
        person("Leo", "Renamed", "leo@example.com", "Sales"),
        person("New", "Hire", "new@example.com", "Sales"),
    ]

    status = await run_import(conn, write_csv(tmp_path / "b.csv", rows), tenant, mode="add-only")

    assert (status["rows"]["skipped"], status["rows"]["created"]) == (1, 1)
    people = await export_rows(conn, tenant)
    assert people["leo@example.com"]["Last name"] == "Learner"
    assert people["new@example.com"]["Manager email"] == "mia@example.com"


async def test_sync_deactivates_missing_people_and_a_later_import_reactivates(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    staff = [*TEAM, *(person(f"P{i}", "Staff", f"p{i}@example.com", "Ops") for i in range(8))]
    await run_import(conn, write_csv(tmp_path / "all.csv", staff), tenant)

    status = await run_import(conn, write_csv(tmp_path / "sync.csv", staff[1:]), tenant, mode="sync")

    assert (status["state"], status["deactivated"]) == ("done", 1)
    people = await export_rows(conn, tenant)
    assert people["mia@example.com"]["Status"] == "deactivated"
    assert len(people) == 12, "deactivated, never deleted"

    back = await run_import(conn, write_csv(tmp_path / "back.csv", staff[:1]), tenant)
    assert back["rows"]["updated"] == 1
    assert (await export_rows(conn, tenant))["mia@example.com"]["Status"] == "active"


async def test_sync_guard_blocks_a_mass_deactivation_until_approved(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    from core.settings import get_settings
    from producer.control import resume_import

    await run_import(conn, write_csv(tmp_path / "all.csv", TEAM), tenant)

    status = await run_import(conn, write_csv(tmp_path / "one.csv", TEAM[:2]), tenant, mode="sync")

    assert (status["state"], status["would_deactivate"], status["deactivated"]) == ("blocked", 2, 0)
    assert {p["Status"] for p in (await export_rows(conn, tenant)).values()} == {"active"}

    await resume_import(get_settings(), status["id"], allow_mass_deactivation=True)
    approved = await wait_final(conn, status["id"])
    assert (approved["state"], approved["deactivated"]) == ("done", 2)


async def test_allow_mass_deactivation_on_the_run(conn: Any, tmp_path: Path, tenant: str) -> None:
    await run_import(conn, write_csv(tmp_path / "all.csv", TEAM), tenant)

    status = await run_import(
        conn, write_csv(tmp_path / "one.csv", TEAM[:1]), tenant, mode="sync", allow_mass_deactivation=True
    )

    assert (status["state"], status["deactivated"]) == ("done", 3)


async def test_admins_are_never_swept(conn: Any, tmp_path: Path, tenant: str) -> None:
    rows = [
        person("Ada", "Admin", "ada@example.com", role="Admin"),
        *(person(f"P{i}", "Staff", f"p{i}@example.com") for i in range(8)),
    ]
    await run_import(conn, write_csv(tmp_path / "all.csv", rows), tenant)

    status = await run_import(conn, write_csv(tmp_path / "sync.csv", rows[2:]), tenant, mode="sync")

    assert (status["deactivated"], status["admins_kept"]) == (1, 1)
    people = await export_rows(conn, tenant)
    assert people["ada@example.com"]["Status"] == "active"
    assert people["p0@example.com"]["Status"] == "deactivated"


async def test_invalid_rows_count_as_in_the_file_for_the_sweep(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    rows = [person(f"P{i}", "Staff", f"p{i}@example.com") for i in range(4)]
    await run_import(conn, write_csv(tmp_path / "all.csv", rows), tenant)
    broken = [*rows[:3], person("", "Staff", "p3@example.com")]  # first name missing

    status = await run_import(conn, write_csv(tmp_path / "sync.csv", broken), tenant, mode="sync")

    assert (status["rows"]["invalid"], status["deactivated"]) == (1, 0)
    assert (await export_rows(conn, tenant))["p3@example.com"]["Status"] == "active"


async def test_duplicate_emails_reject_the_later_row(conn: Any, tmp_path: Path, tenant: str) -> None:
    rows = [person("A", "One", "dup@example.com"), person("B", "Two", "DUP@example.com")]

    status = await run_import(conn, write_csv(tmp_path / "dup.csv", rows), tenant)

    assert (status["rows"]["created"], status["rows"]["invalid"]) == (1, 1)
    errors = await conn.fetchval(
        "SELECT errors FROM import_rows WHERE import_id = $1 AND row_number = 3", status["id"]
    )
    assert "row 2" in errors[0]["message"]
    assert (await export_rows(conn, tenant))["dup@example.com"]["First name"] == "A"


async def test_team_spelled_with_other_case_is_the_existing_team(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await run_import(
        conn, write_csv(tmp_path / "a.csv", [person("A", "One", "a@example.com", "Marketing")]), tenant
    )

    await run_import(
        conn, write_csv(tmp_path / "b.csv", [person("B", "Two", "b@example.com", "  MARKETING ")]), tenant
    )

    teams = await conn.fetch("SELECT name FROM teams WHERE tenant_id = $1", tenant)
    assert [t["name"] for t in teams] == ["Marketing"]
    assert (await export_rows(conn, tenant))["b@example.com"]["Primary team"] == "Marketing"


async def test_a_promoted_manager_becomes_the_manager_of_the_whole_team(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await run_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    # Only Leo's row: he is promoted; Ann (not in the file) follows him, Mia steps down.
    promoted = [
        person("Leo", "Learner", "leo@example.com", "Sales", "Manager"),
        person("Mia", "Manager", "mia@example.com", "Sales", "Learner"),
    ]

    await run_import(conn, write_csv(tmp_path / "b.csv", promoted), tenant)

    people = await export_rows(conn, tenant)
    assert people["ann@example.com"]["Manager email"] == "leo@example.com"
    assert people["mia@example.com"]["Manager email"] == "leo@example.com"
    assert people["leo@example.com"]["Manager email"] == ""


async def test_first_manager_row_of_a_team_wins(conn: Any, tmp_path: Path, tenant: str) -> None:
    rows = [
        person("First", "Boss", "first@example.com", "Ops", "Manager"),
        person("Second", "Boss", "second@example.com", "ops", "Manager"),
        person("Worker", "Bee", "worker@example.com", "OPS"),
    ]

    await run_import(conn, write_csv(tmp_path / "a.csv", rows), tenant)

    people = await export_rows(conn, tenant)
    assert people["worker@example.com"]["Manager email"] == "first@example.com"
    assert people["second@example.com"]["Manager email"] == "first@example.com"


async def test_tenants_are_isolated(conn: Any, tmp_path: Path, tenant: str) -> None:
    other = tenant + "-other"
    await run_import(conn, write_csv(tmp_path / "a.csv", TEAM), other)
    await run_import(conn, write_csv(tmp_path / "b.csv", TEAM), tenant)

    status = await run_import(
        conn, write_csv(tmp_path / "c.csv", TEAM[:1]), tenant, mode="sync", allow_mass_deactivation=True
    )

    assert status["deactivated"] == 3
    assert {p["Status"] for p in (await export_rows(conn, other)).values()} == {"active"}
    teams = await conn.fetch(
        "SELECT DISTINCT tenant_id FROM teams WHERE name = 'Sales' AND tenant_id LIKE $1", tenant + "%"
    )
    assert len(teams) == 2, "each tenant has its own Sales team"


async def test_a_second_import_of_a_tenant_waits_for_the_first(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    big = [person(f"P{i}", "Staff", f"p{i}@example.com", "Ops") for i in range(400)]
    first = await submit(write_csv(tmp_path / "a.csv", big), tenant)
    second = await submit(write_csv(tmp_path / "b.csv", TEAM), tenant)

    first_done = await wait_final(conn, first)
    second_done = await wait_final(conn, second)
    assert first_done["state"] == second_done["state"] == "done"
    started = await conn.fetchval("SELECT started_at FROM imports WHERE id = $1", second)
    assert started >= await conn.fetchval("SELECT finished_at FROM imports WHERE id = $1", first)


async def test_a_row_message_delivered_twice_is_applied_once(conn: Any, tmp_path: Path, tenant: str) -> None:
    from worker.actors import upsert_row

    status = await run_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    for row_number in range(2, 6):
        upsert_row.send(status["id"], row_number)
    # A marker import queued behind nothing: when it is done, the worker has
    # drained the rows queue that held the duplicates before it.
    await run_import(conn, write_csv(tmp_path / "b.csv", TEAM[:1]), tenant)

    again = await wait_final(conn, status["id"])
    assert again["rows"] == status["rows"]
    assert len(await export_rows(conn, tenant)) == 4


async def test_resume_resends_rows_whose_messages_were_lost(conn: Any, tmp_path: Path, tenant: str) -> None:
    from core.imports import start_next_import
    from core.intake.reading import open_csv
    from core.intake.submit import ImportRequest, record_import
    from core.settings import get_settings
    from producer.control import resume_import

    # Recorded and started, but no message ever reached Redis (as after a
    # crash of the producer, or a Redis that lost everything).
    with open_csv(write_csv(tmp_path / "a.csv", TEAM)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await start_next_import(conn, tenant) == import_id

    message = await resume_import(get_settings(), import_id)

    assert "re-sent 4" in message
    status = await wait_final(conn, import_id)
    assert (status["state"], status["rows"]["created"]) == ("done", 4)
    assert (await export_rows(conn, tenant))["leo@example.com"]["Manager email"] == "mia@example.com"


async def test_resume_finishes_an_import_whose_finalize_message_was_lost(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    from core.settings import get_settings
    from producer.control import resume_import

    status = await run_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    # As if the worker died between claiming the finalizing step and sending it.
    await conn.execute("UPDATE imports SET state = 'finalizing' WHERE id = $1", status["id"])

    assert "finalizing step re-sent" in await resume_import(get_settings(), status["id"])
    assert (await wait_final(conn, status["id"]))["state"] == "done"


async def test_a_producer_held_back_by_a_full_row_queue_leaves_the_rest_to_a_worker(
    conn: Any, tmp_path: Path, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from core import outbox
    from core.imports import start_next_import
    from core.intake.reading import open_csv
    from core.intake.submit import ImportRequest, record_import
    from core.settings import get_settings

    # The producer (this process) may fill the row queue up to 20 messages;
    # the worker, which runs the continuation, has the default limit.
    limited = dataclasses.replace(get_settings(), max_queue_backlog=20)
    monkeypatch.setattr(outbox, "get_settings", lambda: limited)
    people = [person(f"P{i}", "Row", f"p{i}@example.com", "Ops") for i in range(600)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await start_next_import(conn, tenant) == import_id

    dispatched = await outbox.dispatch_rows(conn, import_id)

    assert dispatched.resume_after is not None, dispatched
    assert dispatched.sent < 600
    status = await wait_final(conn, import_id)
    assert (status["state"], status["rows"]["created"]) == ("done", 600)


async def test_an_import_capped_in_flight_is_topped_up_by_the_worker_until_done(
    conn: Any, tmp_path: Path, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from core import outbox
    from core.imports import start_next_import
    from core.intake.reading import open_csv
    from core.intake.submit import ImportRequest, record_import
    from core.settings import get_settings

    # This process sends 50 rows at most; the worker's continuations top the
    # import up as its rows settle.
    capped = dataclasses.replace(get_settings(), import_max_in_flight=50)
    monkeypatch.setattr(outbox, "get_settings", lambda: capped)
    people = [person(f"P{i}", "Row", f"p{i}@example.com", "Ops") for i in range(600)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await start_next_import(conn, tenant) == import_id

    dispatched = await outbox.dispatch_rows(conn, import_id)

    assert (dispatched.sent, dispatched.resume_after, dispatched.at_cap) == (50, 51, True)
    status = await wait_final(conn, import_id)
    assert (status["state"], status["rows"]["created"]) == ("done", 600)


async def test_a_capped_import_whose_rows_in_flight_were_lost_is_sent_again_from_the_first(
    conn: Any, tmp_path: Path, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from core import outbox
    from core.imports import start_next_import
    from core.intake.reading import open_csv
    from core.intake.submit import ImportRequest, record_import
    from core.settings import get_settings

    people = [person(f"P{i}", "Row", f"p{i}@example.com", "Ops") for i in range(300)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await start_next_import(conn, tenant) == import_id
    # As a continuation after rows 2..201 were sent and their messages lost:
    # 200 rows count as in flight, the cap is 100, and Redis holds none of them.
    young = dataclasses.replace(get_settings(), import_max_in_flight=100)
    monkeypatch.setattr(outbox, "get_settings", lambda: young)
    assert not await outbox.in_flight_lost(conn, import_id, young.stall_after_s), "idle for less than that"
    stalled = dataclasses.replace(young, stall_after_s=0)
    monkeypatch.setattr(outbox, "get_settings", lambda: stalled)

    dispatched = await outbox.dispatch_rows(conn, import_id, after=201)

    assert (dispatched.sent, dispatched.resume_after) == (100, 101), "sent again from the first row"
    status = await wait_final(conn, import_id)
    assert (status["state"], status["rows"]["created"]) == ("done", 300)


async def test_status_says_since_when_an_import_has_not_moved(
    conn: Any, tmp_path: Path, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from core import outbox
    from core import status as worker_status
    from core.imports import start_next_import
    from core.intake.reading import open_csv
    from core.intake.submit import ImportRequest, record_import
    from core.settings import get_settings
    from producer import reports

    # Stalled after 0 s without progress, for this process's status only
    # (the status JSON is built by core.status).
    impatient = dataclasses.replace(get_settings(), stall_after_s=0)
    monkeypatch.setattr(worker_status, "get_settings", lambda: impatient)
    with open_csv(write_csv(tmp_path / "a.csv", TEAM)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await start_next_import(conn, tenant) == import_id  # started; its rows never sent

    stalled = await reports.import_status(conn, import_id)
    started = await conn.fetchval("SELECT started_at FROM imports WHERE id = $1", import_id)

    assert stalled["state"] == "running"
    assert stalled["stalled_since"] == started.isoformat()
    await outbox.dispatch_rows(conn, import_id)
    done = await wait_final(conn, import_id)
    assert done["state"] == "done" and done["stalled_since"] is None
