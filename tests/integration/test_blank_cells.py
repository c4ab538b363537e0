"""The blank_cells option against PostgreSQL: keep leaves stored values under blank cells,
clear (the default) clears them, and the review predicts either."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.intake.options import ImportOptions, OptionError
from core.intake.review import review_file
from tests.support.imports import apply_import, person, write_csv

STORED = person(
    "Ann",
    "Lee",
    "ann@example.com",
    "Sales",
    "Manager",
    title="Lead",
    secondary="Ops; Support",
    language="fr",
    location="Paris",
)
# Every optional cell blank but the last name and the location.
BLANKS = person("Ann", "Kim", "ann@example.com", location="Berlin")


async def stored_person(conn: Any, tenant: str, email: str) -> dict[str, Any]:
    """The person's optional columns, teams by name (secondary ones sorted)."""
    row = await conn.fetchrow(
        """SELECT p.last_name, p.job_title, p.role, p.language, p.location,
                  (SELECT name FROM teams WHERE id = p.primary_team_id) AS primary_team,
                  ARRAY(SELECT name FROM teams WHERE id = ANY(p.secondary_team_ids) ORDER BY name)
                      AS secondary_teams
           FROM people p WHERE p.tenant_id = $1 AND p.email = $2""",
        tenant,
        email,
    )
    return dict(row)


async def test_keep_leaves_stored_values_under_blank_cells_and_writes_the_others(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", [STORED]), tenant)

    applied = await apply_import(conn, write_csv(tmp_path / "b.csv", [BLANKS]), tenant, blank_cells="keep")

    assert applied["statuses"] == {2: "updated"}
    assert await stored_person(conn, tenant, "ann@example.com") == {
        "last_name": "Kim",
        "job_title": "Lead",
        "role": "manager",
        "language": "fr",
        "location": "Berlin",
        "primary_team": "Sales",
        "secondary_teams": ["Ops", "Support"],
    }


async def test_clear_the_default_clears_stored_values_under_blank_cells(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", [STORED]), tenant)

    applied = await apply_import(conn, write_csv(tmp_path / "b.csv", [BLANKS]), tenant)

    assert applied["statuses"] == {2: "updated"}
    assert await stored_person(conn, tenant, "ann@example.com") == {
        "last_name": "Kim",
        "job_title": None,
        "role": "learner",
        "language": None,
        "location": "Berlin",
        "primary_team": None,
        "secondary_teams": [],
    }


async def test_keep_gives_a_new_person_the_defaults_under_blank_cells(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    new = person("Bob", "Roe", "bob@example.com", location="Oslo")

    applied = await apply_import(conn, write_csv(tmp_path / "a.csv", [new]), tenant, blank_cells="keep")

    assert applied["statuses"] == {2: "created"}
    assert await stored_person(conn, tenant, "bob@example.com") == {
        "last_name": "Roe",
        "job_title": None,
        "role": "learner",
        "language": None,
        "location": "Oslo",
        "primary_team": None,
        "secondary_teams": [],
    }


@pytest.mark.parametrize(
    ("blank_cells", "action", "outcome"), [("keep", "unchanged", "unchanged"), ("clear", "update", "updated")]
)
async def test_a_row_differing_only_by_blank_cells_is_unchanged_under_keep(
    conn: Any, tmp_path: Path, tenant: str, blank_cells: str, action: str, outcome: str
) -> None:
    await apply_import(conn, write_csv(tmp_path / "a.csv", [STORED]), tenant)
    path = write_csv(tmp_path / "b.csv", [person("Ann", "Lee", "ann@example.com")])

    review = await review_file(conn, path, tenant, ImportOptions(blank_cells=blank_cells), row_details=True)
    applied = await apply_import(conn, path, tenant, blank_cells=blank_cells)

    assert review["blank_cells"] == blank_cells
    assert [r["action"] for r in review["rows_preview"]] == [action]
    assert applied["statuses"] == {2: outcome}


def test_an_unknown_blank_cells_value_names_the_option_and_its_values() -> None:
    with pytest.raises(OptionError) as refused:
        ImportOptions(blank_cells="never")
    assert str(refused.value) == "blank_cells is 'never': choose one of clear, keep"
    assert refused.value.option == "blank_cells"
    with pytest.raises(OptionError, match="blank_cells is 'never'"):
        ImportOptions.from_text({"blank_cells": "never"})
