"""The vocabulary against the database: the schema allows exactly its values, and the
review's preview applies the worker's person-update rule.

The rule is written twice, on purpose: in Python (``core.rows.desired_person``
and ``is_unchanged``), where the import applies rows in batches, and in SQL
(``review_classify_rows``), where the review predicts a whole file set-based
without reading people into memory. The generated cases below hold the two to
the same answers: random stored people, random files in every mode and with
either blank_cells option, and for each row the review's action must be what
the worker then does; for each row it updates, the changes the review lists
(``review_row_changes``, managers included) must be exactly how the person
reads before and after the worker applied the file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import vocabulary
from core.columns import COLUMNS, COLUMNS_BY_NAME, PERSON_COLUMNS
from core.db import connection
from core.intake.options import ImportOptions
from core.intake.review import review_file
from core.vocabulary import FILE_MODES, OUTCOME_OF_ACTION, BlankCells, Mode
from tests.support.imports import apply_import

# --- the schema's CHECK constraints ----------------------------------------------------------

CHECKED = [
    ("imports", "mode", tuple(vocabulary.Mode)),
    ("undos", "phase", tuple(vocabulary.UndoPhase)),
    ("imports", "blank_cells", tuple(vocabulary.BlankCells)),
    ("imports", "invites", tuple(vocabulary.InviteOption)),
    ("imports", "state", tuple(vocabulary.ImportState)),
    ("import_rows", "status", tuple(vocabulary.RowStatus)),
    ("people", "role", tuple(vocabulary.Role)),
    ("people", "status", tuple(vocabulary.PersonStatus)),
    ("invites", "status", tuple(vocabulary.InviteState)),
    ("invite_batches", "state", tuple(vocabulary.BatchState)),
    ("webhook_events", "type", tuple(vocabulary.EventType)),
    ("webhook_deliveries", "state", tuple(vocabulary.DeliveryState)),
    ("sources", "kind", tuple(vocabulary.SourceKind)),
    ("source_runs", "state", tuple(vocabulary.RunState)),
    ("source_runs", "outcome", tuple(vocabulary.RunOutcome)),
]


@pytest.mark.parametrize(("table", "column", "values"), CHECKED)
async def test_the_schema_allows_exactly_the_vocabularys_values(
    conn: Any, table: str, column: str, values: tuple[str, ...]
) -> None:
    definitions = await conn.fetch(
        "SELECT pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = $1 AND c.contype = 'c'",
        table,
    )
    # PostgreSQL shows "col IN ('a', 'b')" as "col = ANY (ARRAY['a'::text, 'b'::text])".
    pattern = re.compile(rf"\({column} = ANY \(ARRAY\[(.*?)\]\)\)")
    allowed = [
        re.findall(r"'([^']*)'::text", match.group(1))
        for d in definitions
        if (match := pattern.search(d["definition"])) is not None
    ]
    assert allowed == [list(values)], f"{table}.{column}"


async def test_people_has_every_column_the_vocabulary_stores(conn: Any) -> None:
    columns = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'people'"
    )
    assert set(PERSON_COLUMNS) <= {c["column_name"] for c in columns}


async def test_the_stored_defaults_are_the_schemas(conn: Any) -> None:
    defaults = {
        r["column_name"]: r["column_default"]
        for r in await conn.fetch(
            "SELECT column_name, column_default FROM information_schema.columns WHERE table_name = 'people'"
        )
    }
    for column in COLUMNS:
        if column.default is not None:
            assert defaults[column.stored_as] == f"'{column.default}'::text"


# --- the review's preview applies the worker's rule -----------------------------------------

EMAILS = ["a@example.com", "b@example.com", "c@example.com", "d@example.com"]
# Few values per column, so that stored and new values often agree; team names
# that are spellings of one team, and teams that exist only once a file names them.
CELLS: dict[str, list[str]] = {
    "first_name": ["Ann", "Bob", ""],
    "last_name": ["Lee", "Kim"],
    "job_title": ["", "Dev", "Lead"],
    "primary_team": ["", "Sales", "sales", "S ales", "Ops", "New Team"],
    "secondary_teams": ["", "Ops", "Sales; Ops", "ops;SALES", "New Team", "Fresh; Ops", "Sales"],
    "role": ["", "Learner", "manager", "ADMIN"],
    "language": ["", "fr", "French", "de", "en-GB"],
    "location": ["", "Paris", "Berlin"],
}
OPTIONAL = [c.name for c in COLUMNS if not c.required]


def _row(columns: list[str], *, valid: bool = False) -> st.SearchStrategy[dict[str, str]]:
    cells = {name: [c for c in CELLS[name] if c or not valid] for name in CELLS} | {"email": EMAILS}
    return st.fixed_dictionaries({name: st.sampled_from(cells[name]) for name in columns})


def _near(data: st.DataObject, stored: list[dict[str, str]], columns: list[str]) -> list[dict[str, str]]:
    """The second file: for each of some e-mails, mostly the stored row with at most two
    cells changed (one differing column decides between update and unchanged; a second
    one, often blank, tests what an update does with the other cells), else a new row;
    now and then a repeated e-mail."""
    emails = data.draw(st.lists(st.sampled_from(EMAILS), min_size=1, unique=True), label="emails")
    if data.draw(st.integers(0, 7)) == 0:
        emails.append(emails[0])
    by_email = {row["email"]: row for row in reversed(stored)}
    file = []
    for email in emails:
        if email in by_email and data.draw(st.integers(0, 3)) > 0:
            row = dict(by_email[email])
        else:
            row = data.draw(_row([c.name for c in COLUMNS])) | {"email": email}
        for name in data.draw(st.lists(st.sampled_from(columns[3:] or columns), max_size=2)):
            row[name] = data.draw(st.sampled_from(CELLS[name] if name != "email" else EMAILS))
        file.append({name: row[name] for name in columns})
    return file


def _csv(columns: list[str], data: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([COLUMNS_BY_NAME[name].header for name in columns])
    writer.writerows([row[name] for name in columns] for row in data)
    return out.getvalue().encode()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stored=st.lists(
        _row([c.name for c in COLUMNS], valid=True), max_size=4, unique_by=lambda row: row["email"]
    ),
    deactivated=st.sets(st.sampled_from(EMAILS), max_size=1),
    columns=st.lists(st.sampled_from(OPTIONAL), unique=True).map(
        lambda optional: ["first_name", "last_name", "email", *optional]
    ),
    second=st.data(),
    mode=st.sampled_from(FILE_MODES),
    blank_cells=st.sampled_from(tuple(BlankCells)),
)
def test_the_review_predicts_what_the_worker_does_to_each_row(
    database_url: str,
    stored: list[dict[str, str]],
    deactivated: set[str],
    columns: list[str],
    second: st.DataObject,
    mode: str,
    blank_cells: str,
) -> None:
    data = _csv(columns, _near(second, stored, columns))

    async def run() -> tuple[dict[int, str], dict[int, str], list[dict[str, Any]], dict[str, Any]]:
        tenant = f"t-rule-{uuid.uuid4().hex[:12]}"
        async with connection(database_url) as conn:
            if stored:
                await apply_import(
                    conn, io.BytesIO(_csv([c.name for c in COLUMNS], stored)), tenant, Mode.UPSERT
                )
            await conn.execute(
                "UPDATE people SET status = 'deactivated', deactivated_at = now() "
                "WHERE tenant_id = $1 AND email = ANY($2::text[])",
                tenant,
                sorted(deactivated),
            )
            review = await review_file(
                conn,
                io.BytesIO(data),
                tenant,
                ImportOptions(mode=mode, blank_cells=blank_cells),
                row_details=True,
            )
            before = await _people(conn, tenant)
            file = io.BytesIO(data)
            applied = (await apply_import(conn, file, tenant, mode, blank_cells=blank_cells))["statuses"]
            after = await _people(conn, tenant)
        actions = review["rows_preview"]
        predicted = {r["row"]: OUTCOME_OF_ACTION.get(r["action"], r["action"]) for r in actions}
        differences = {e: _differences(before[e], after[e]) for e in before if e in after}
        return predicted, applied, actions, differences

    predicted, applied, actions, differences = asyncio.run(run())
    assert predicted == applied
    for row in actions:
        if row["action"] == "update":
            assert row["changes"] == differences[row["email"]], row["row"]
        else:
            assert "changes" not in row


# How an admin reads a person (the export's way): teams by name, secondary ones
# sorted by team key, the manager as the primary team's unless that is themself.
PERSON_AS_READ = """
SELECT p.email, p.first_name, p.last_name, p.job_title, pt.name AS primary_team,
       (SELECT array_agg(t.name ORDER BY t.name_key) FROM unnest(p.secondary_team_ids) AS s(id)
        JOIN teams t ON t.id = s.id) AS secondary_teams,
       p.role, p.language, p.location, p.status, m.email AS manager
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id)
WHERE p.tenant_id = $1
"""


async def _people(conn: Any, tenant: str) -> dict[str, Any]:
    return {r["email"]: r for r in await conn.fetch(PERSON_AS_READ, tenant)}


def _differences(before: Any, after: Any) -> list[dict[str, Any]]:
    """What differs between two readings of a person, as the review's changes say it."""
    fields = [(c.name, c.header) for c in COLUMNS if c.stored_as is not None]
    differences = []
    for field, header in [*fields, ("status", "Status"), ("manager", "Manager")]:
        old, new = before[field], after[field]
        if field == "secondary_teams":
            old, new = "; ".join(old or []) or None, "; ".join(new or []) or None
        if old != new:
            differences.append({"field": field, "header": header, "old": old, "new": new})
    return differences
