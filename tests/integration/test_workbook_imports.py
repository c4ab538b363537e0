"""Workbooks through the review, the import, the CLI and the API: the same people as a CSV
give the same review and the same stored people."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from click.testing import CliRunner

from core.columns import TEMPLATE_HEADERS
from core.intake.options import ImportOptions
from core.intake.review import review_file
from producer.cli.review import review_command
from tests.integration.test_api import bearer, client, poll_final, settings, submit, token
from tests.support.imports import apply_import, person, write_csv

__all__ = ["client", "settings", "token"]  # fixtures, used by name

PEOPLE = [
    person("Mia", "Manager", "mia@example.com", "Sales", "Manager", title="Head of Sales", language="fr"),
    person("Leo", "Learner", "Leo@Example.com ", "sales ", secondary="Support", location="00123"),
    person("Ann", "Admin", "ann@example.com", "Support", "Admin"),
    person("Bad", "Row", "not-an-email"),
    person("Tom", "Solo", "mia@example.com"),
]


def xlsx_bytes(rows: Sequence[Sequence[str]], *, notes_first: bool = True) -> bytes:
    book = openpyxl.Workbook()
    notes = book.active
    notes.title = "Read me"
    notes.append(["This workbook lists our people; the sheet People is the one to import."])
    sheet = book.create_sheet("People")
    sheet.append(list(TEMPLATE_HEADERS))
    for row in rows:
        sheet.append(list(row))
        sheet.cell(row=sheet.max_row, column=len(row)).number_format = "@"
    book.create_sheet("Archive").append(["Email"])
    if not notes_first:
        book.move_sheet("People", offset=-1)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def without_file(review: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in review.items() if key != "file"}


async def test_the_same_people_as_csv_and_xlsx_review_and_import_alike(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    csv_path = write_csv(tmp_path / "people.csv", PEOPLE)
    xlsx_path = tmp_path / "people.xlsx"
    xlsx_path.write_bytes(xlsx_bytes(PEOPLE))

    from_csv = await review_file(conn, csv_path, tenant, ImportOptions(mode="sync"), row_details=True)
    from_xlsx = await review_file(conn, xlsx_path, tenant, ImportOptions(mode="sync"), row_details=True)

    assert without_file(from_xlsx) == without_file(from_csv)
    assert from_xlsx["rows"] == {"total": 5, "valid": 3, "invalid": 2, "blank": 0}
    assert from_xlsx["file"] | {"name": None} == {
        "name": None,
        "format": "xlsx",
        "sheet": "People",
        "other_sheets": ["Read me", "Archive"],
        "encoding": None,
        "delimiter": None,
        "header_row": 1,
        "preamble": [],
    }
    assert {e["row"] for e in from_xlsx["errors"]} == {5, 6}

    other = f"{tenant}-xlsx"
    csv_outcome = await apply_import(conn, csv_path, tenant)
    xlsx_outcome = await apply_import(conn, xlsx_path, other)
    # Two imports: everything but their ids alike.
    assert xlsx_outcome | {"id": None} == csv_outcome | {"id": None}
    query = (
        "SELECT p.email, p.first_name, p.last_name, p.job_title, p.role, p.language, p.location, p.status,"
        " t.name AS team FROM people p LEFT JOIN teams t ON t.id = p.primary_team_id"
        " WHERE p.tenant_id = $1 ORDER BY p.email"
    )
    stored = [dict(r) for r in await conn.fetch(query, tenant)]
    assert stored == [dict(r) for r in await conn.fetch(query, other)]
    assert [p["location"] for p in stored if p["email"] == "leo@example.com"] == ["00123"]


def test_the_command_names_the_sheet_and_takes_sheet(database_url: str, tmp_path: Path, tenant: str) -> None:
    path = tmp_path / "people.xlsx"
    path.write_bytes(xlsx_bytes(PEOPLE[:3]))

    text = CliRunner().invoke(review_command, [str(path), "--tenant", tenant], catch_exceptions=False)
    assert text.exit_code == 0, text.output
    assert "Excel workbook, sheet 'People', header on row 1" in text.output
    assert "other sheets, not read: Read me, Archive" in text.output

    chosen = CliRunner().invoke(
        review_command, [str(path), "--tenant", tenant, "--sheet", "Archive", "--json"]
    )
    review = json.loads(chosen.output)
    assert chosen.exit_code == 2 and review["file"]["sheet"] == "Archive"
    assert "no column for 'First name'" in review["error"]


async def test_the_api_reviews_an_xlsx_body_by_content(client: httpx.AsyncClient, token: str) -> None:
    body = xlsx_bytes(PEOPLE[:3], notes_first=False)
    response = await client.post(
        "/api/imports/review",
        params={"mode": "upsert"},
        content=body,
        headers={**bearer(token), "Content-Type": "text/csv"},  # a wrong type does not matter
    )
    assert response.status_code == 200, response.text
    review = response.json()
    assert (review["file"]["format"], review["file"]["sheet"], review["rows"]["valid"]) == (
        "xlsx",
        "People",
        3,
    )

    named = await client.post(
        "/api/imports/review", params={"sheet": "Nope"}, content=body, headers=bearer(token)
    )
    assert named.status_code == 422 and "no sheet named 'Nope'" in named.json()["error"]


@pytest.mark.usefixtures("worker")
async def test_the_api_imports_an_xlsx_body(client: httpx.AsyncClient, token: str) -> None:
    submitted = await submit(client, token, xlsx_bytes(PEOPLE), sheet="People")
    status = await poll_final(client, token, submitted["id"])
    assert status["state"] == "done"
    assert (status["rows"]["total"], status["rows"]["invalid"], status["rows"]["created"]) == (5, 2, 3)
