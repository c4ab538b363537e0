"""Tenants are sealed off from each other, whatever a file says.

A file is written by a tenant's admin, so a hostile one is in scope: it may
name another tenant's people, teams and ids. The import, the review and the
invitations must only ever see the importing tenant's rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.columns import TEMPLATE_HEADERS
from core.intake.options import ImportOptions
from core.intake.review import review_file
from tests.support.imports import export_rows, person, run_import, write_csv

pytestmark = pytest.mark.usefixtures("worker")


async def _footprint(conn: Any, tenant: str) -> dict[str, Any]:
    """Everything of ``tenant`` another tenant's import could disturb."""
    return {
        "people": await export_rows(conn, tenant),
        "rows": [
            dict(r)
            for r in await conn.fetch(
                "SELECT id, primary_team_id, status, last_import_id, updated_at"
                " FROM people WHERE tenant_id = $1 ORDER BY id",
                tenant,
            )
        ],
        "teams": [
            dict(r)
            for r in await conn.fetch(
                "SELECT id, name, manager_id FROM teams WHERE tenant_id = $1 ORDER BY id",
                tenant,
            )
        ],
        "invites": [
            dict(r)
            for r in await conn.fetch(
                "SELECT id, status, batch_id FROM invites WHERE tenant_id = $1 ORDER BY id",
                tenant,
            )
        ],
    }


async def test_crafted_rows_cannot_reach_another_tenants_people(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    victim = tenant + "-victim"
    await run_import(
        conn,
        write_csv(
            tmp_path / "victim.csv",
            [
                person("Vic", "Boss", "boss@victim.example", "Sales", "Manager"),
                person("Val", "Staff", "val@victim.example", "Sales"),
            ],
        ),
        victim,
        invites="none",
    )
    before = await _footprint(conn, victim)
    boss_id = before["rows"][0]["id"]
    # The other tenant's e-mails, team name and ids, and columns that try to
    # name a manager, a tenant or a person id outright.
    header = [*TEMPLATE_HEADERS, "Manager email", "Tenant", "Id"]
    eve = person("Eve", "Mallory", "BOSS@victim.example", "sales", "Manager")
    mal = person("Mal", "Mallory", "mal@attacker.example", "Sales")
    ann = person("Ann", "Mallory", "ann@attacker.example", "Sales ", secondary="sales")
    crafted = [
        [*eve, "", victim, str(boss_id)],
        [*mal, "boss@victim.example", victim, str(boss_id)],
        [*ann, "val@victim.example", "", ""],
    ]
    path = write_csv(tmp_path / "crafted.csv", crafted, header=header)

    review = await review_file(conn, path, tenant, ImportOptions(mode="sync"))
    status = await run_import(conn, path, tenant, mode="sync", invites="now")

    # The review knows nothing of the other tenant: every row is a new person.
    assert review["preview"]["create"] == 3 and review["preview"]["deactivate"] == 0
    assert sorted(review["columns"]["unmatched"]) == ["Id", "Manager email", "Tenant"]
    assert (status["state"], status["rows"]["created"], status["deactivated"]) == ("done", 3, 0)
    assert await _footprint(conn, victim) == before
    attackers = await export_rows(conn, tenant)
    assert attackers["mal@attacker.example"]["Manager email"] == "boss@victim.example"  # their own Eve
    own = await conn.fetchval(
        "SELECT id FROM people WHERE tenant_id = $1 AND email = $2", tenant, "boss@victim.example"
    )
    assert own != boss_id
    foreign = await conn.fetchval(
        "SELECT count(*) FROM people p WHERE p.tenant_id = $1 AND ("
        " EXISTS (SELECT 1 FROM teams t JOIN people m ON m.id = t.manager_id"
        "         WHERE t.id = p.primary_team_id AND m.tenant_id <> p.tenant_id)"
        " OR EXISTS (SELECT 1 FROM teams t WHERE t.id = p.primary_team_id AND t.tenant_id <> p.tenant_id))",
        tenant,
    )
    assert foreign == 0
    invited = await conn.fetch(
        "SELECT p.tenant_id FROM invites i JOIN people p ON p.id = i.person_id WHERE i.import_id = $1",
        status["id"],
    )
    assert {r["tenant_id"] for r in invited} == {tenant}


async def test_the_same_email_in_two_tenants_is_two_people(conn: Any, tmp_path: Path, tenant: str) -> None:
    other = tenant + "-other"
    rows = [person("Sam", "Same", "sam@example.com", "Ops", "Manager")]
    await run_import(conn, write_csv(tmp_path / "a.csv", rows), other)
    before = await _footprint(conn, other)

    changed = [person("Samuel", "Else", "sam@example.com", "Ops", "Learner", title="CEO")]
    status = await run_import(conn, write_csv(tmp_path / "b.csv", changed), tenant)

    assert status["rows"]["created"] == 1, "the other tenant's Sam is not this tenant's"
    assert await _footprint(conn, other) == before
    assert (await export_rows(conn, tenant))["sam@example.com"]["First name"] == "Samuel"
