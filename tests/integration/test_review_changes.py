"""The review's changes: for each person an import would update, what changes field by
field and who their manager becomes (``changes`` and ``rows_preview[].changes``).

Each case sets people up by applying a file as the worker does, reviews a second
file, and where it matters applies that file too, to check the prediction.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core.columns import TEMPLATE_HEADERS
from core.db import connection
from core.errors import BulkImportError
from core.intake.options import ImportOptions
from core.intake.review import review_file
from core.intake.review.review import ROW_DETAILS_CAP
from producer.cli.review import review_command
from producer.cli.review_report import SHOWN_CHANGED_PEOPLE
from tests.support.imports import apply_import, person, write_csv

TEAM = [
    person("Mia", "Manager", "mia@example.com", "Sales", "Manager", title="Head of Sales"),
    person("Leo", "Learner", "leo@example.com", "Sales", secondary="Support", title="Analyst", language="fr"),
    person("Ann", "Admin", "ann@example.com", "Support", "Admin"),
    person("Tom", "Solo", "tom@example.com", location="Paris"),
]


def change(field: str, header: str, old: Any, new: Any) -> dict[str, Any]:
    return {"field": field, "header": header, "old": old, "new": new}


async def changes_of(conn: Any, path: Path, tenant: str, **options: Any) -> dict[str, list[dict[str, Any]]]:
    """Each updated e-mail's changes, checked to be the same in ``changes`` and ``rows_preview``."""
    review = await review_file(conn, path, tenant, ImportOptions(**options), row_details=True)
    paged = {r["email"]: r["changes"] for r in review["changes"]["rows"]}
    listed = {r["email"]: r["changes"] for r in review["rows_preview"] if r["action"] == "update"}
    assert paged == listed and review["changes"]["total"] == review["preview"]["update"]
    return paged


@pytest.fixture
async def team(conn: Any, tmp_path: Path, tenant: str) -> None:
    await apply_import(conn, write_csv(tmp_path / "team.csv", TEAM), tenant)


async def test_a_changed_field_shows_its_header_old_and_new_value(
    conn: Any, tmp_path: Path, tenant: str, team: None
) -> None:
    data = [*TEAM]
    data[1] = person(
        "Leo", "Learner", "leo@example.com", "Sales", secondary="Support", title="Senior Analyst"
    )
    path = write_csv(tmp_path / "b.csv", data)

    review = await review_file(conn, path, tenant)

    assert review["changes"] == {
        "total": 1,
        "offset": 0,
        "limit": 50,
        "rows": [
            {
                "row": 3,
                "email": "leo@example.com",
                "name": "Leo Learner",
                "changes": [
                    change("job_title", "Job title", "Analyst", "Senior Analyst"),
                    change("language", "Language", "fr", None),
                ],
            }
        ],
    }


async def test_blank_cells_clear_or_keep_as_the_import_says(
    conn: Any, tmp_path: Path, tenant: str, team: None
) -> None:
    blank = [person("Mia", "Manager", "mia@example.com"), person("Tom", "Solo", "tom@example.com")]
    path = write_csv(tmp_path / "b.csv", blank)

    cleared = await changes_of(conn, path, tenant)
    kept = await changes_of(conn, path, tenant, blank_cells="keep")

    assert cleared == {
        "mia@example.com": [
            change("job_title", "Job title", "Head of Sales", None),
            change("primary_team", "Primary team", "Sales", None),
            change("role", "Role", "manager", "learner"),
        ],
        "tom@example.com": [change("location", "Location", "Paris", None)],
    }
    assert kept == {}
    # A row that changes something keeps its blank cells' values under keep.
    located = write_csv(tmp_path / "l.csv", [person("Leo", "Learner", "leo@example.com", location="Oslo")])
    assert await changes_of(conn, located, tenant, blank_cells="keep") == {
        "leo@example.com": [change("location", "Location", None, "Oslo")]
    }
    # Without the columns at all, nothing is cleared either way.
    absent = write_csv(tmp_path / "c.csv", [r[:3] for r in blank], TEMPLATE_HEADERS[:3])
    assert await changes_of(conn, absent, tenant) == {}


async def test_team_changes_name_the_teams_and_a_new_one_as_the_file_writes_it(
    conn: Any, tmp_path: Path, tenant: str, team: None
) -> None:
    data = [
        person(
            "Leo",
            "Learner",
            "leo@example.com",
            "new  team",
            secondary="sales; Support; Zeta",
            title="Analyst",
            language="fr",
        ),
        person("Tom", "Solo", "tom@example.com", "support", secondary="Sales", location="Paris"),
        person("Zed", "New", "zed@example.com", "NEW TEAM", secondary="zeta"),
    ]
    path = write_csv(tmp_path / "b.csv", data)

    changes = await changes_of(conn, path, tenant)
    await apply_import(conn, path, tenant)

    assert changes["leo@example.com"] == [
        change("primary_team", "Primary team", "Sales", "new team"),
        change("secondary_teams", "Secondary team", "Support", "Sales; Support; Zeta"),
        change("manager", "Manager", "mia@example.com", None),
    ]
    assert changes["tom@example.com"] == [
        change("primary_team", "Primary team", None, "Support"),
        change("secondary_teams", "Secondary team", None, "Sales"),
    ]
    names = await conn.fetch("SELECT name FROM teams WHERE tenant_id = $1 ORDER BY name_key", tenant)
    assert [r["name"] for r in names] == ["new team", "Sales", "Support", "Zeta"]


async def test_a_deactivated_person_is_reactivated(
    conn: Any, tmp_path: Path, tenant: str, team: None
) -> None:
    await apply_import(conn, write_csv(tmp_path / "b.csv", TEAM[:3]), tenant, "sync")  # Tom deactivated

    changes = await changes_of(conn, write_csv(tmp_path / "c.csv", TEAM), tenant)

    assert changes == {"tom@example.com": [change("status", "Status", "deactivated", "active")]}


async def test_the_manager_follows_a_new_primary_team_and_a_new_manager_row(
    conn: Any, tmp_path: Path, tenant: str, team: None
) -> None:
    data = [
        # A new Manager of Support: everyone in Support follows, Leo moves to it.
        person("Sue", "Boss", "sue@example.com", "Support", "Manager"),
        person(
            "Leo",
            "Learner",
            "leo@example.com",
            "Support",
            secondary="Support",
            title="Analyst",
            language="fr",
        ),
        person("Ann", "Admin", "ann@example.com", "Support", "Admin"),
        # Mia stays Sales's manager; a second Manager row for Sales does not win.
        person("Mia", "Manager", "mia@example.com", "Sales", "Manager", title="Head of Sales"),
        person("Tom", "Solo", "tom@example.com", "Sales", "Manager", location="Paris"),
    ]
    path = write_csv(tmp_path / "b.csv", data)

    changes = await changes_of(conn, path, tenant)
    await apply_import(conn, path, tenant)

    # Ann's row changes nothing of hers (unchanged, as the worker counts it):
    # her new manager is not listed, like everyone's not in the file.
    assert changes == {
        "leo@example.com": [
            change("primary_team", "Primary team", "Sales", "Support"),
            change("secondary_teams", "Secondary team", "Support", None),
            change("manager", "Manager", "mia@example.com", "sue@example.com"),
        ],
        "tom@example.com": [
            change("primary_team", "Primary team", None, "Sales"),
            change("role", "Role", "learner", "manager"),
            change("manager", "Manager", None, "mia@example.com"),
        ],
    }
    managers = await conn.fetch(
        """SELECT p.email, m.email AS manager FROM people p
           LEFT JOIN teams t ON t.id = p.primary_team_id
           LEFT JOIN people m ON m.id = nullif(t.manager_id, p.id)
           WHERE p.tenant_id = $1""",
        tenant,
    )
    after = {r["email"]: r["manager"] for r in managers}
    assert (after["leo@example.com"], after["ann@example.com"], after["tom@example.com"]) == (
        "sue@example.com",
        "sue@example.com",
        "mia@example.com",
    )


async def test_a_manager_demoted_in_the_file_leaves_the_team_without_one(
    conn: Any, tmp_path: Path, tenant: str, team: None
) -> None:
    data = [
        person("Mia", "Manager", "mia@example.com", "Sales", title="Head of Sales"),
        person(
            "Leo", "Learner", "leo@example.com", "Sales", secondary="Support", title="Lead", language="fr"
        ),
    ]
    path = write_csv(tmp_path / "b.csv", data)

    changes = await changes_of(conn, path, tenant)
    in_add_only = await review_file(conn, path, tenant, ImportOptions(mode="add-only"))

    assert changes == {
        "mia@example.com": [change("role", "Role", "manager", "learner")],
        "leo@example.com": [
            change("job_title", "Job title", "Analyst", "Lead"),
            change("manager", "Manager", "mia@example.com", None),
        ],
    }
    assert in_add_only["changes"] == {"total": 0, "offset": 0, "limit": 50, "rows": []}


async def test_changes_page_through_the_updated_rows(conn: Any, tmp_path: Path, tenant: str) -> None:
    people = [person("P", str(i), f"p{i}@example.com") for i in range(7)]
    await apply_import(conn, write_csv(tmp_path / "a.csv", people), tenant)
    moved = [person("P", str(i), f"p{i}@example.com", location="Oslo" if i % 2 else "") for i in range(7)]
    path = write_csv(tmp_path / "b.csv", moved)

    first = await review_file(conn, path, tenant, changes_limit=2)
    second = await review_file(conn, path, tenant, changes_offset=2, changes_limit=2)
    everything = await review_file(conn, path, tenant, changes_limit=ROW_DETAILS_CAP + 1)

    assert [r["row"] for r in first["changes"]["rows"]] == [3, 5]
    assert [r["row"] for r in second["changes"]["rows"]] == [7]
    assert second["changes"]["total"] == 3 and second["changes"]["offset"] == 2
    assert everything["changes"]["limit"] == ROW_DETAILS_CAP and len(everything["changes"]["rows"]) == 3
    assert (await review_file(conn, path, tenant, changes_limit=0))["changes"]["rows"] == []
    with pytest.raises(BulkImportError):
        await review_file(conn, path, tenant, changes_offset=-1)


# --- the command ------------------------------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(review_command, list(args), catch_exceptions=False)


def test_the_report_shows_the_first_people_to_update_and_how_many_more(
    database_url: str, tmp_path: Path, tenant: str
) -> None:
    staff = [*TEAM, *(person("P", str(i), f"p{i:02}@example.com") for i in range(SHOWN_CHANGED_PEOPLE + 2))]

    async def setup() -> None:
        async with connection(database_url) as conn:
            await apply_import(conn, write_csv(tmp_path / "a.csv", staff), tenant)

    asyncio.run(setup())
    moved = [
        TEAM[0],
        person("Leo", "Learner", "leo@example.com", "Support", title="Senior Analyst", language="fr"),
        *(
            person("P", str(i), f"p{i:02}@example.com", location="Oslo")
            for i in range(SHOWN_CHANGED_PEOPLE + 2)
        ),
    ]
    path = write_csv(tmp_path / "b.csv", moved)

    out = invoke(str(path), "--tenant", tenant, "--mode", "sync").output
    rows = invoke(str(path), "--tenant", tenant, "--rows").output
    everything = json.loads(invoke(str(path), "--tenant", tenant, "--json", "--all-changes").output)

    assert (
        "  updating leo@example.com  Job title: Analyst → Senior Analyst; Primary team: Sales → Support; "
        "Secondary team: Support → —; Manager: mia@example.com → —"
    ) in out
    assert "  updating p00@example.com  Location: — → Oslo" in out
    assert "  … and 3 more to update — use --rows, or --json --all-changes" in out
    assert "deactivating tom@example.com (not in the file; admins are kept)" in out
    assert "  row 15: p11@example.com → update (Location: — → Oslo)" in rows
    assert len(everything["changes"]["rows"]) == everything["changes"]["total"] == SHOWN_CHANGED_PEOPLE + 3
