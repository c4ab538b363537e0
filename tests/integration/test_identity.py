"""People keep who they are when their e-mail changes: employee ids, renames, conflicts.

Real PostgreSQL, without a broker (``apply_import`` runs the import's steps as
the workers would). The migration through the Procfile's worker, with
invitations, is ``test_identity_worker``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from core import identity
from core.errors import FileRejected
from core.intake.options import ImportOptions
from core.intake.review import review_file
from core.status import import_status
from core.vocabulary import MatchKey
from tests.support.imports import apply_import, apply_undo, export_rows, person, write_csv

WITH_PREVIOUS = ["First name", "Last name", "Email", "Primary team", "Role", "Previous email"]


async def people(conn: Any, tenant: str) -> dict[int, dict[str, Any]]:
    """The tenant's people by id: address, id, name, status."""
    rows = await conn.fetch(
        "SELECT id, email, employee_id, first_name, last_name, status FROM people WHERE tenant_id = $1",
        tenant,
    )
    return {r["id"]: dict(r) for r in rows}


async def managers(conn: Any, tenant: str) -> dict[str, int | None]:
    """Each team's manager, by team name (a person id)."""
    rows = await conn.fetch("SELECT name, manager_id FROM teams WHERE tenant_id = $1", tenant)
    return {r["name"]: r["manager_id"] for r in rows}


def staff(domain: str, count: int, *, ids: bool = True) -> list[list[str]]:
    """``count`` people in teams of five, the first of each its Manager."""
    return [
        person(
            f"P{n}",
            "Staff",
            f"p{n}@{domain}",
            f"Team {n // 5}",
            "Manager" if n % 5 == 0 else "",
            employee_id=f"E{n:04}" if ids else "",
        )
        for n in range(count)
    ]


async def test_the_first_import_with_ids_adopts_the_people_imported_before_without_them(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", staff("acme.example", 6, ids=False)), tenant)
    before = await people(conn, tenant)

    with_ids = write_csv(tmp_path / "b.csv", staff("acme.example", 6))
    review = await review_file(conn, with_ids, tenant, ImportOptions(match_by="employee-id"))
    applied = await apply_import(conn, with_ids, tenant, "sync", match_by="employee-id")

    after = await people(conn, tenant)
    assert set(applied["statuses"].values()) == {"updated"} and applied["deactivated"] == 0
    assert after.keys() == before.keys()
    assert {p["email"]: p["employee_id"] for p in after.values()} == {
        f"p{n}@acme.example": f"E{n:04}" for n in range(6)
    }
    first = review["changes"]["rows"][0]
    assert first["changes"] == [
        {"field": "employee_id", "header": "Employee ID", "old": None, "new": "E0000"}
    ]
    assert (await export_rows(conn, tenant))["p0@acme.example"]["Employee ID"] == "E0000"


@pytest.mark.parametrize("mode", ["upsert", "sync"])
async def test_a_new_address_under_a_known_id_is_the_same_person(
    conn: Any, tenant: str, tmp_path: Path, mode: str
) -> None:
    rows = [
        person("Dana", "Cho", "dana.cho@acme.example", "Sales", "Manager", employee_id="E7"),
        person("Eli", "Ng", "eli@acme.example", "Sales", employee_id="E8"),
    ]
    await apply_import(conn, write_csv(tmp_path / "a.csv", rows), tenant, match_by="employee-id")
    before = await people(conn, tenant)
    rows[0] = person("Dana", "Park", "dana.park@acme.example", "Sales", "Manager", employee_id="E7")
    married = write_csv(tmp_path / "b.csv", rows)

    review = await review_file(conn, married, tenant, ImportOptions(mode=mode))
    applied = await apply_import(conn, married, tenant, mode)

    assert review["match_by"] == "employee-id"  # remembered for the tenant by the first import
    assert review["preview"]["email_changes"] == 1 and review["preview"]["create"] == 0
    (dana,) = [r for r in review["changes"]["rows"] if r["row"] == 2]
    assert [(c["field"], c["old"], c["new"]) for c in dana["changes"]] == [
        ("last_name", "Cho", "Park"),
        ("email", "dana.cho@acme.example", "dana.park@acme.example"),
    ]
    after = await people(conn, tenant)
    assert after.keys() == before.keys()  # nobody new, nobody gone
    dana_id = next(i for i, p in before.items() if p["employee_id"] == "E7")
    assert after[dana_id]["email"] == "dana.park@acme.example" and after[dana_id]["status"] == "active"
    assert (await managers(conn, tenant))["Sales"] == dana_id
    status = await import_status(conn, applied["id"])
    assert status["match_by"] == "employee-id"
    assert (status["rows"]["updated"], status["rows"]["email_changed"], status["deactivated"]) == (1, 1, 0)
    assert status["rows"]["unchanged"] == 1


@pytest.mark.parametrize("how", ["employee-id", "previous-email"])
async def test_a_whole_tenant_moves_to_a_new_domain_in_one_sync_file(
    conn: Any, tenant: str, tmp_path: Path, how: str
) -> None:
    count = 60
    await apply_import(conn, write_csv(tmp_path / "a.csv", staff("acme.example", count)), tenant)
    before, teams_before = await people(conn, tenant), await managers(conn, tenant)
    if how == "employee-id":
        moved = write_csv(tmp_path / "b.csv", staff("acme-group.com", count))
        options: dict[str, Any] = {"match_by": "employee-id"}
    else:
        rows = [
            [*r[:2], r[2].replace("acme.example", "acme-group.com"), r[4], r[6], r[2]]
            for r in staff("acme.example", count, ids=False)
        ]
        moved = write_csv(tmp_path / "b.csv", rows, WITH_PREVIOUS)
        options = {}

    review = await review_file(conn, moved, tenant, ImportOptions(mode="sync", **options))
    applied = await apply_import(conn, moved, tenant, "sync", max_share=0.25, **options)

    assert (review["preview"]["create"], review["preview"]["deactivate"]) == (0, 0)
    assert review["preview"]["email_changes"] == count and not review["preview"]["would_block"]
    assert applied["state"] == "done" and applied["deactivated"] == 0
    assert set(applied["statuses"].values()) == {"updated"}
    status = await import_status(conn, applied["id"])
    assert (status["rows"]["created"], status["rows"]["email_changed"]) == (0, count)
    after = await people(conn, tenant)
    assert after.keys() == before.keys()
    assert all(p["email"].endswith("@acme-group.com") and p["status"] == "active" for p in after.values())
    assert {i: p["employee_id"] for i, p in after.items()} == {i: p["employee_id"] for i, p in before.items()}
    assert await managers(conn, tenant) == teams_before

    undone = await apply_undo(conn, applied["id"], batch_size=7)

    assert undone["state"] == "done" and undone["undo"]["emails_restored"] == count
    assert undone["undo"]["not_restored"] == 0
    assert await people(conn, tenant) == before
    assert await managers(conn, tenant) == teams_before


@pytest.mark.parametrize("match_by", list(MatchKey))
async def test_swapped_addresses_and_a_chain_in_one_file(
    conn: Any, tenant: str, tmp_path: Path, match_by: MatchKey
) -> None:
    header = [*WITH_PREVIOUS, "Employee ID"]
    first = [
        ["Ann", "A", "a@x.example", "Ops", "Manager", "", "E1"],
        ["Bob", "B", "b@x.example", "Ops", "", "", "E2"],
        ["Cat", "C", "c@x.example", "Ops", "", "", "E3"],
        ["Dan", "D", "d@x.example", "Ops", "", "", "E4"],
    ]
    await apply_import(conn, write_csv(tmp_path / "a.csv", first, header), tenant)
    before = await people(conn, tenant)
    ids = {p["employee_id"]: i for i, p in before.items()}
    # Ann and Bob swap; Cat takes Dan's address and Dan a new one (c → d → e).
    second = [
        ["Ann", "A", "b@x.example", "Ops", "Manager", "a@x.example", "E1"],
        ["Bob", "B", "a@x.example", "Ops", "", "b@x.example", "E2"],
        ["Cat", "C", "d@x.example", "Ops", "", "c@x.example", "E3"],
        ["Dan", "D", "e@x.example", "Ops", "", "d@x.example", "E4"],
    ]
    path = write_csv(tmp_path / "b.csv", second, header)

    review = await review_file(conn, path, tenant, ImportOptions(mode="sync", match_by=match_by))
    applied = await apply_import(conn, path, tenant, "sync", match_by=match_by)

    assert review["errors"] == [] and review["preview"]["email_changes"] == 4
    assert set(applied["statuses"].values()) == {"updated"} and applied["deactivated"] == 0
    after = await people(conn, tenant)
    assert {p["employee_id"]: p["email"] for p in after.values()} == {
        "E1": "b@x.example",
        "E2": "a@x.example",
        "E3": "d@x.example",
        "E4": "e@x.example",
    }
    assert (await managers(conn, tenant))["Ops"] == ids["E1"]

    await apply_undo(conn, applied["id"], batch_size=1)
    assert await people(conn, tenant) == before


async def test_an_address_someone_keeps_cannot_be_taken_and_nothing_is_half_applied(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    first = [
        person("Ann", "A", "a@x.example", employee_id="E1"),
        person("Bob", "B", "b@x.example", employee_id="E2"),
        person("Cat", "C", "c@x.example", employee_id="E3"),
    ]
    await apply_import(conn, write_csv(tmp_path / "a.csv", first), tenant, match_by="employee-id")
    before = await people(conn, tenant)
    # Ann wants Bob's address, Bob wants Cat's; Cat, not in the file, keeps hers: the chain fails
    # whole, and Cat is named.
    second = [
        person("Ann", "A", "b@x.example", employee_id="E1", title="Lead"),
        person("Bob", "B", "c@x.example", employee_id="E2"),
    ]
    path = write_csv(tmp_path / "b.csv", second)

    review = await review_file(conn, path, tenant, ImportOptions(mode="upsert"))
    applied = await apply_import(conn, path, tenant, "upsert")

    assert applied["statuses"] == {2: "invalid", 3: "invalid"}
    messages = {row: [e["message"] for e in errors] for row, errors in applied["errors"].items()}
    assert messages[3] == [
        "c@x.example is the address of Cat C (c@x.example, employee id E3), and this file gives them no"
        " other one: Bob B (b@x.example, employee id E2) cannot take it; give them their new address in"
        " this file too, or correct this one"
    ]
    assert messages[2] == [
        "b@x.example is the address of Bob B (b@x.example, employee id E2), whose own row (row 3) cannot"
        " be applied: Ann A (a@x.example, employee id E1) cannot take it until that row can"
    ]
    assert {e["row"]: e["message"] for e in review["errors"]} == {r: m[0] for r, m in messages.items()}
    assert await people(conn, tenant) == before


async def test_an_employee_id_claimed_twice(conn: Any, tenant: str, tmp_path: Path) -> None:
    await apply_import(
        conn,
        write_csv(tmp_path / "a.csv", [person("Ann", "A", "a@x.example", employee_id="E1")]),
        tenant,
        match_by="employee-id",
    )
    before = await people(conn, tenant)
    rows = [
        person("Bob", "B", "b@x.example", employee_id="E2"),
        person("Bea", "B", "bea@x.example", employee_id="E2"),  # the same id on two rows
        person("Ann", "A", "a@x.example", employee_id="E5"),  # Ann's address under a new id
    ]
    applied = await apply_import(conn, write_csv(tmp_path / "b.csv", rows), tenant)

    assert applied["statuses"] == {2: "created", 3: "invalid", 4: "invalid"}
    assert applied["errors"][3][0]["message"] == (
        "employee id E2 is already on row 2: each person may appear only once in a file"
    )
    assert applied["errors"][4][0]["message"].startswith(
        "a@x.example is the address of Ann A (a@x.example, employee id E1), and this file gives them"
        " no other one: the new person on this row cannot take it"
    )
    after = await people(conn, tenant)
    assert {p["email"] for p in after.values()} == {"a@x.example", "b@x.example"}
    assert all(after[i] == p for i, p in before.items())


async def test_by_email_an_id_never_changes_and_is_never_anothers(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    rows = [person("Ann", "A", "a@x.example", employee_id="E1"), person("Bob", "B", "b@x.example")]
    await apply_import(conn, write_csv(tmp_path / "a.csv", rows), tenant)
    rows = [
        person("Ann", "A", "a@x.example", employee_id="E9"),  # another id for Ann
        person("Bob", "B", "b@x.example", employee_id="E1"),  # Ann's id for Bob
    ]
    applied = await apply_import(conn, write_csv(tmp_path / "b.csv", rows), tenant, match_by="email")

    assert applied["statuses"] == {2: "invalid", 3: "invalid"}
    assert applied["errors"][2][0]["message"] == (
        "Ann A (a@x.example, employee id E1) has employee id E1, not E9: an employee id never changes;"
        " correct it"
    )
    assert applied["errors"][3][0]["column"] == "Employee ID"
    assert "employee id E1 is Ann A (a@x.example, employee id E1)'s" in applied["errors"][3][0]["message"]


async def test_a_blank_id_when_matching_by_it_is_a_row_error_and_no_id_column_refuses_the_file(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    rows = [person("Ann", "A", "a@x.example", employee_id="E1"), person("Bob", "B", "b@x.example")]
    applied = await apply_import(conn, write_csv(tmp_path / "a.csv", rows), tenant, match_by="employee-id")
    assert applied["statuses"] == {2: "created", 3: "invalid"}
    assert applied["errors"][3][0]["column"] == "Employee ID"

    no_ids = write_csv(tmp_path / "b.csv", [r[:3] for r in rows], ["First name", "Last name", "Email"])
    review = await review_file(conn, no_ids, tenant)
    assert review["importable"] is False and "Employee ID" in review["error"]
    assert review["columns"]["missing_required"] == ["employee_id"]
    with pytest.raises(FileRejected, match="match people by e-mail"):
        await apply_import(conn, no_ids, tenant)
    # Said otherwise, the same file imports by e-mail (and the tenant now matches by e-mail).
    assert (await apply_import(conn, no_ids, tenant, match_by="email"))["statuses"] == {
        2: "unchanged",
        3: "created",
    }


async def test_add_only_skips_a_known_person_at_another_address(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    await apply_import(
        conn,
        write_csv(tmp_path / "a.csv", [person("Ann", "A", "a@x.example", employee_id="E1")]),
        tenant,
        match_by="employee-id",
    )
    rows = [
        person("Ann", "A", "ann@x.example", employee_id="E1"),
        person("Bob", "B", "b@x.example", employee_id="E2"),
    ]
    path = write_csv(tmp_path / "b.csv", rows)
    review = await review_file(conn, path, tenant, ImportOptions(mode="add-only"), row_details=True)
    applied = await apply_import(conn, path, tenant, "add-only")

    assert [r["action"] for r in review["rows_preview"]] == ["skip", "create"]
    assert review["preview"]["email_changes"] == 0
    assert applied["statuses"] == {2: "skipped", 3: "created"}
    assert {p["email"] for p in (await people(conn, tenant)).values()} == {"a@x.example", "b@x.example"}


async def test_two_tenants_use_the_same_ids_apart(conn: Any, tenant: str, tmp_path: Path) -> None:
    other = tenant + "-b"
    for name in (tenant, other):
        await apply_import(conn, write_csv(tmp_path / f"{name}.csv", staff(f"{name}.example", 5)), name)
    theirs = await people(conn, other)

    moved = write_csv(tmp_path / "moved.csv", staff("new.example", 5))
    applied = await apply_import(conn, moved, tenant, "sync", match_by="employee-id")

    assert set(applied["statuses"].values()) == {"updated"} and applied["deactivated"] == 0
    assert {p["email"] for p in (await people(conn, tenant)).values()} == {
        f"p{n}@new.example" for n in range(5)
    }
    assert await people(conn, other) == theirs


async def test_without_ids_the_review_points_at_likely_renames(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", staff("acme.example", 3, ids=False)), tenant)
    moved = staff("acme-group.com", 3, ids=False)
    moved[2] = person("Someone", "Else", "p2@acme-group.com", "Team 0")
    path = write_csv(tmp_path / "b.csv", moved)

    review = await review_file(conn, path, tenant, ImportOptions(mode="sync"))

    renames = review["likely_renames"]
    assert renames["total"] == 2
    assert [(p["row"], p["email"], p["person"]["email"]) for p in renames["pairs"]] == [
        (2, "p0@acme-group.com", "p0@acme.example"),
        (3, "p1@acme-group.com", "p1@acme.example"),
    ]
    (warning,) = [w for w in review["warnings"] if w["row"] == 2]
    assert warning["message"] == (
        "P0 Staff would be added as p0@acme-group.com while P0 Staff (p0@acme.example, Team 0) would be"
        " deactivated: if they are one person whose address changed, add a Previous email column with"
        " p0@acme.example on this row"
    )


async def test_the_match_key_given_is_remembered_and_wins_over_the_remembered(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "a.csv", staff("acme.example", 2))
    first = await apply_import(conn, path, tenant, match_by="employee-id")
    second = await apply_import(conn, path, tenant)
    third = await apply_import(conn, path, tenant, match_by="email")
    fourth = await apply_import(conn, path, tenant)

    keys = [(await import_status(conn, i["id"]))["match_by"] for i in (first, second, third, fourth)]
    assert keys == ["employee-id", "employee-id", "email", "email"]
    body = io.BytesIO(path.read_bytes())
    assert (await review_file(conn, body, tenant))["match_by"] == "email"


async def test_resolving_again_changes_nothing(conn: Any, tenant: str, tmp_path: Path) -> None:
    """A resumed import (the dispatcher's first page sent again) finds its identities resolved."""
    await apply_import(conn, write_csv(tmp_path / "a.csv", staff("acme.example", 3)), tenant)
    applied = await apply_import(
        conn,
        write_csv(tmp_path / "b.csv", staff("acme-group.com", 3)),
        tenant,
        "sync",
        match_by="employee-id",
    )
    after = await people(conn, tenant)
    changes = await conn.fetch("SELECT * FROM import_changes WHERE import_id = $1", applied["id"])

    assert not await identity.resolve_import(conn, applied["id"])
    await conn.execute("UPDATE imports SET state = 'running' WHERE id = $1", applied["id"])
    assert not await identity.resolve_import(conn, applied["id"])  # resolved once, whatever the state

    assert await people(conn, tenant) == after
    assert await conn.fetch("SELECT * FROM import_changes WHERE import_id = $1", applied["id"]) == changes
