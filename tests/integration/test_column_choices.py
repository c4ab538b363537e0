"""Column choices against PostgreSQL: an admin's choices apply, are remembered for the
tenant and only for it, the review applies them without remembering, and the errors
file can be fixed and uploaded again."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from core.errors import BulkImportError
from core.intake.choices import remembered_choices
from core.intake.options import ImportOptions
from core.intake.review import review_file
from producer.reports import import_status, write_failed_rows
from tests.support.imports import apply_import, write_csv

HEADER = ["Email", "First name", "Last name", "Titre"]
ANN = ["ann@example.com", "Ann", "Lee", "Lead"]
BOB = ["bob@example.com", "Bob", "Ray", "Chef"]


async def job_titles(conn: Any, tenant: str) -> dict[str, str | None]:
    rows = await conn.fetch("SELECT email, job_title FROM people WHERE tenant_id = $1", tenant)
    return {r["email"]: r["job_title"] for r in rows}


async def last_import(conn: Any, tenant: str) -> dict[str, Any]:
    import_id = await conn.fetchval("SELECT max(id) FROM imports WHERE tenant_id = $1", tenant)
    return await import_status(conn, import_id)


async def test_an_explicit_choice_maps_an_unmatched_column(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "a.csv", [ANN], HEADER)

    applied = await apply_import(conn, path, tenant, mapping={"titre": "job_title"})

    assert applied["state"] == "done"
    assert await job_titles(conn, tenant) == {"ann@example.com": "Lead"}
    status = await last_import(conn, tenant)
    assert status["mapping"] == {"Titre": "job_title"}
    columns = await conn.fetchval("SELECT columns FROM imports WHERE id = $1", status["id"])
    assert (columns["mapping"], columns["remembered"]) == ({"Titre": "job_title"}, [])


async def test_the_next_file_with_the_header_gets_the_remembered_choice(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    await apply_import(
        conn, write_csv(tmp_path / "a.csv", [ANN], HEADER), tenant, mapping={"Titre": "job_title"}
    )

    applied = await apply_import(
        conn, write_csv(tmp_path / "b.csv", [[BOB[3], *BOB[:3]]], ["TITRE", *HEADER[:3]]), tenant
    )

    assert applied["state"] == "done"
    assert (await job_titles(conn, tenant))["bob@example.com"] == "Chef"
    status = await last_import(conn, tenant)
    assert status["mapping"] == {"TITRE": "job_title"}
    columns = await conn.fetchval("SELECT columns FROM imports WHERE id = $1", status["id"])
    assert columns["remembered"] == ["TITRE"]


async def test_a_later_choice_replaces_the_remembered_one(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "a.csv", [ANN], HEADER)
    await apply_import(conn, path, tenant, mapping={"Titre": "job_title"})

    await apply_import(conn, path, tenant, mapping={"Titre": None})

    assert await remembered_choices(conn, tenant, HEADER) == {"Titre": None}
    assert (await last_import(conn, tenant))["mapping"] == {"Titre": None}


async def test_another_tenant_does_not_get_the_choice(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "a.csv", [ANN], HEADER)
    await apply_import(conn, path, tenant, mapping={"Titre": "job_title"})
    other = f"{tenant}-b"

    await apply_import(conn, path, other)

    assert await job_titles(conn, other) == {"ann@example.com": None}
    status = await last_import(conn, other)
    assert status["mapping"] == {}
    assert await remembered_choices(conn, other, HEADER) == {}


async def test_a_choice_for_a_column_the_file_lacks_refuses_the_import_and_is_not_remembered(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    path = write_csv(tmp_path / "a.csv", [ANN], HEADER)

    with pytest.raises(BulkImportError, match="no column 'Poste'"):
        await apply_import(conn, path, tenant, mapping={"Titre": "job_title", "Poste": None})

    assert await remembered_choices(conn, tenant, HEADER) == {}


async def test_the_review_applies_choices_and_remembers_none(conn: Any, tmp_path: Path, tenant: str) -> None:
    header = [*HEADER, "Ville"]
    await apply_import(
        conn, write_csv(tmp_path / "a.csv", [ANN], HEADER), tenant, mapping={"Titre": "job_title"}
    )
    path = write_csv(tmp_path / "b.csv", [[*BOB, "Oslo"]], header)

    review = await review_file(conn, path, tenant, ImportOptions(mapping={"Ville": "location"}))

    columns = review["columns"]
    assert columns["chosen"] == {"Titre": "job_title", "Ville": "location"}
    assert columns["remembered"] == ["Titre"]
    assert columns["ignored"] == []
    assert columns["matched"]["Ville"] == "location"
    assert review["preview"]["create"] == 1
    assert await remembered_choices(conn, tenant, header) == {"Titre": "job_title"}


async def test_the_fixed_errors_file_can_be_uploaded_again(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "a.csv", [ANN, ["not-an-email", "Bob", "Ray", "Chef"]], HEADER)
    await apply_import(conn, path, tenant, mapping={"Titre": "job_title"})
    out = io.StringIO()
    await write_failed_rows(conn, (await last_import(conn, tenant))["id"], out)
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(out.getvalue().replace("not-an-email", "bob@example.com"), encoding="utf-8")

    applied = await apply_import(conn, fixed, tenant)

    assert applied["state"] == "done"
    assert applied["statuses"] == {2: "created"}
    assert (await job_titles(conn, tenant))["bob@example.com"] == "Chef"
    status = await last_import(conn, tenant)
    columns = await conn.fetchval("SELECT columns FROM imports WHERE id = $1", status["id"])
    assert (columns["ignored"], columns["unmatched"]) == (["Row", "Reason"], [])
