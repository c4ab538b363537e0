"""Undoing an import, without a broker: what comes back, what is kept and reported, the preview."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from core import imports, undo
from core.columns import PERSON_COLUMNS
from core.errors import InvalidState
from core.vocabulary import Step
from producer.reports import write_failed_rows
from tests.support.imports import apply_import, apply_undo, person, start_undo, write_csv

STATE = (*PERSON_COLUMNS, "status", "deactivated_at", "deactivated_by_import", "last_import_id")


async def people(conn: Any, tenant: str) -> dict[str, dict[str, Any]]:
    """Every person of the tenant as stored (the columns an undo restores), by e-mail."""
    rows = await conn.fetch(
        f"SELECT email, {', '.join(STATE)} FROM people WHERE tenant_id = $1",
        tenant,
    )
    return {r["email"]: {c: r[c] for c in STATE} for r in rows}


async def managers(conn: Any, tenant: str) -> dict[str, str | None]:
    """Each team's manager's e-mail, by team name."""
    rows = await conn.fetch(
        "SELECT t.name, m.email FROM teams t LEFT JOIN people m ON m.id = t.manager_id"
        " WHERE t.tenant_id = $1",
        tenant,
    )
    return {r["name"]: r["email"] for r in rows}


async def report(conn: Any, undo_id: int) -> list[list[str]]:
    out = io.StringIO()
    await write_failed_rows(conn, undo_id, out)
    return [line.split(",") for line in out.getvalue().splitlines()]


BEFORE = [
    person("Ann", "Able", "ann@example.com", "Sales", "Manager", title="Lead"),
    person("Bob", "Baker", "bob@example.com", "Sales", title="Rep", secondary="Support"),
    person("Cat", "Cole", "cat@example.com", "Support", language="fr"),
]
# The wrong file: Bob moved to a new team with a new title, Cat's language and
# secondary team cleared, Ann demoted, and Dan, a new manager of Sales.
WRONG = [
    person("Ann", "Able", "ann@example.com", "Sales", "Learner", title="Lead"),
    person("Bob", "Baker", "bob@example.com", "Typo Team", title="Intern"),
    person("Cat", "Cole", "cat@example.com", "Support"),
    person("Dan", "Dune", "dan@example.com", "Sales", "Manager"),
]


async def test_an_upsert_undone_deactivates_whom_it_created_and_restores_whom_it_updated(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    before, teams_before = await people(conn, tenant), await managers(conn, tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG), tenant)
    assert (await managers(conn, tenant))["Sales"] == "dan@example.com"

    status = await apply_undo(conn, wrong["id"])

    after = await people(conn, tenant)
    assert after["dan@example.com"]["status"] == "deactivated"
    assert after["dan@example.com"]["deactivated_by_import"] == status["id"]
    assert {e: p for e, p in after.items() if e != "dan@example.com"} == before
    assert status["state"] == "done" and status["mode"] == "undo" and status["undoes"] == wrong["id"]
    assert status["undo"] == {
        "phase": "finished",
        "restored": 3,
        "emails_restored": 0,
        "deactivated": 1,
        "reactivated": 0,
        "kept": 0,
        "invites_cancelled": 1,  # Dan's pending invite (invites=none records it, unsent)
        "invites_sent": 0,
        "teams_left": 1,
        "not_restored": 1,
    }
    assert (
        await conn.fetchval(
            "SELECT i.status FROM invites i JOIN people p ON p.id = i.person_id"
            " WHERE p.email = 'dan@example.com' AND p.tenant_id = $1",
            tenant,
        )
        == "cancelled"
    )
    assert (await managers(conn, tenant)) == teams_before | {"Typo Team": None}
    lines = await report(conn, status["id"])
    assert lines[0] == [
        "Row",
        "Email",
        "Row in the import",
        "Field",
        "Before the import",
        "Written by the import",
        "Now",
        "Reason",
    ]
    assert lines[1][3:7] == ["Team", "", "Typo Team", "Typo Team"] and "left in place" in lines[1][-1]


async def test_a_value_changed_since_is_kept_and_reported(conn: Any, tmp_path: Path, tenant: str) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG), tenant)
    # Another admin gives Bob a title of their own; a later import renames Cat.
    await conn.execute(
        "UPDATE people SET job_title = 'Head' WHERE tenant_id = $1 AND email = 'bob@example.com'", tenant
    )
    later = [person("Cat", "Cole-Smith", "cat@example.com", "Support")]
    await apply_import(conn, write_csv(tmp_path / "c.csv", later), tenant)

    preview = await undo.preview_undo(conn, wrong["id"], 30, 2)
    status = await apply_undo(conn, wrong["id"])

    after = await people(conn, tenant)
    assert after["bob@example.com"]["job_title"] == "Head", "changed since: kept"
    assert after["cat@example.com"]["last_name"] == "Cole-Smith"
    assert after["cat@example.com"]["language"] == "fr", "the field the later import did not touch comes back"
    assert status["undo"]["kept"] == 1
    lines = await report(conn, status["id"])
    kept = [line for line in lines if line[-1] == "changed since; kept"]
    assert kept == [
        [kept[0][0], "bob@example.com", "3", "Job title", "Rep", "Intern", "Head", "changed since; kept"]
    ]
    assert preview["kept"] == 1 and preview["not_restored"][0]["now"] == "Head"
    assert {k: preview[k] for k in ("restored", "deactivated", "kept")} == {
        k: status["undo"][k] for k in ("restored", "deactivated", "kept")
    }


async def test_a_sync_undone_reactivates_whom_it_swept(conn: Any, tmp_path: Path, tenant: str) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    before = await people(conn, tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", BEFORE[:1]), tenant, "sync")
    assert wrong["deactivated"] == 2

    status = await apply_undo(conn, wrong["id"])

    assert await people(conn, tenant) == before
    assert status["undo"]["reactivated"] == 2


async def test_the_preview_writes_nothing_and_predicts_the_undo(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG[1:]), tenant, "sync")
    before = await people(conn, tenant)

    preview = await undo.preview_undo(conn, wrong["id"], 30, 1)

    assert await people(conn, tenant) == before
    assert (preview["restored"], preview["deactivated"], preview["reactivated"]) == (2, 1, 1)
    assert preview["teams_created"] == ["Typo Team"]
    status = await apply_undo(conn, wrong["id"])
    assert {k: status["undo"][k] for k in ("restored", "deactivated", "reactivated", "kept")} == {
        k: preview[k] for k in ("restored", "deactivated", "reactivated", "kept")
    }


async def test_a_second_undo_does_nothing(conn: Any, tmp_path: Path, tenant: str) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG), tenant, "sync")
    await apply_undo(conn, wrong["id"])
    once = await people(conn, tenant)

    again = await apply_undo(conn, wrong["id"])

    assert await people(conn, tenant) == once
    # Nothing left to do; the team the import created is still reported as empty.
    assert again["undo"] | {"phase": None} == dict.fromkeys(again["undo"], 0) | {
        "phase": None,
        "teams_left": 1,
        "not_restored": 1,
    }


async def test_two_tenants_are_undone_apart(conn: Any, tmp_path: Path, tenant: str) -> None:
    other = tenant + "-b"
    for t in (tenant, other):
        await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), t)
    theirs_before = await people(conn, other)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG), tenant)
    await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG), other)
    theirs = await people(conn, other)

    await apply_undo(conn, wrong["id"])

    assert await people(conn, other) == theirs != theirs_before


async def test_past_the_retention_window_the_updated_are_reported_and_the_rest_undone(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG[1:2] + WRONG[3:]), tenant, "sync")
    await conn.execute(
        "UPDATE imports SET finished_at = now() - interval '31 days' WHERE id = $1", wrong["id"]
    )
    assert await undo.purge_old_changes(conn, 30) >= 2

    preview = await undo.preview_undo(conn, wrong["id"], 30, 10)
    status = await apply_undo(conn, wrong["id"], retention_days=30)

    after = await people(conn, tenant)
    assert preview["values_purged"] and preview["not_restored"][0]["email"] == "bob@example.com"
    assert "UNDO_RETENTION_DAYS" in preview["not_restored"][0]["reason"]
    assert after["bob@example.com"]["job_title"] == "Intern", "its before-values are gone"
    assert {after[e]["status"] for e in ("ann@example.com", "cat@example.com")} == {"active"}
    assert after["dan@example.com"]["status"] == "deactivated"
    assert (
        (status["undo"]["reactivated"], status["undo"]["kept"])
        == (2, 1)
        == (
            preview["reactivated"],
            preview["kept"],
        )
    )


async def test_only_a_finished_import_that_is_no_undo_can_be_undone(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    wrong = await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    status = await apply_undo(conn, wrong["id"])
    await conn.execute("UPDATE imports SET state = 'cancelled' WHERE id = $1", wrong["id"])

    with pytest.raises(InvalidState, match="an undo cannot be undone"):
        await undo.preview_undo(conn, status["id"], 30, 10)
    with pytest.raises(InvalidState, match="only a finished"):
        await undo.preview_undo(conn, wrong["id"], 30, 10)


async def test_a_cancelled_undo_stops_between_batches_and_a_new_one_finishes(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", BEFORE), tenant)
    before = await people(conn, tenant)
    wrong = await apply_import(conn, write_csv(tmp_path / "b.csv", WRONG), tenant)
    undo_id = await start_undo(conn, wrong["id"])
    assert await undo.undo_batch(conn, undo_id, 1, 30) == Step.MORE

    assert (await imports.cancel_import(conn, undo_id))[0] == tenant
    assert await undo.run_undo(conn, undo_id, 1, 30) is None, "a cancelled undo does nothing more"
    halfway = await people(conn, tenant)
    status = await apply_undo(conn, wrong["id"])

    assert halfway != before
    assert {e: p for e, p in (await people(conn, tenant)).items() if e != "dan@example.com"} == before
    assert status["state"] == "done"
