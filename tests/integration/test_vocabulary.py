"""The vocabulary against the database: the schema allows exactly its values, and the
review's preview applies the worker's person-update rule.

The rule is written twice, on purpose: in Python (``core.rows.desired_person``
and ``is_unchanged``), where the import applies rows in batches, and in SQL
(``review_classify_rows``), where the review predicts a whole file set-based
without reading people into memory. The generated cases below hold the two to
the same answers: random stored people (some with employee ids), random files
in every mode, with either blank_cells option and either match key, with
employee ids, previous addresses, renames, swaps and conflicts; for each row
the review's action must be what the worker then does, and its rejection
the worker's; for each row it updates, the changes the review lists
(``review_row_changes``, addresses and managers included) must be exactly how
the person reads before and after the worker applied the file; and the
review's sweep and e-mail changes must be the import's.

The recording writes the rule a third time (``record_rows``: the
rows that change nothing settle as unchanged before any message is sent),
as each chunk of rows is written. Each file is imported, then imported again
(the next night's file, which changes less), and for each import the rows
settled at recording must be exactly the rows the review calls unchanged,
but for those a rename touches (which always travel to the workers), and
none in add-only; the rows sent as messages are the others.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core import vocabulary
from core.columns import COLUMNS, COLUMNS_BY_NAME, PERSON_COLUMNS
from core.db import connection
from core.errors import FileRejected
from core.intake.options import ImportOptions
from core.intake.review import review_file
from core.vocabulary import FILE_MODES, OUTCOME_OF_ACTION, BlankCells, MatchKey, Mode
from tests.support.imports import apply_import

# --- the schema's CHECK constraints ----------------------------------------------------------

CHECKED = [
    ("imports", "mode", tuple(vocabulary.Mode)),
    ("imports", "match_by", tuple(vocabulary.MatchKey)),
    ("tenants", "match_by", tuple(vocabulary.MatchKey)),
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

# Stored people take the first four addresses; a file may also move someone to the others.
EMAILS = ["a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"]
IDS = ["E1", "E2", "E3", "E4"]
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
    "employee_id": ["", "E1", "E2", "E5"],
    "previous_email": ["", *EMAILS],
}
OPTIONAL = [c.name for c in COLUMNS if not c.required]
KEYS = ("employee_id", "previous_email")
TEMPLATE = [c.name for c in COLUMNS if c.template]


def _row(columns: list[str], *, valid: bool = False) -> st.SearchStrategy[dict[str, str]]:
    cells = {name: [c for c in CELLS[name] if c or not valid] for name in CELLS} | {"email": EMAILS}
    return st.fixed_dictionaries({name: st.sampled_from(cells[name]) for name in columns})


@st.composite
def _stored(draw: st.DrawFn) -> list[dict[str, str]]:
    """Up to four stored people at the first addresses, each with an employee id or none."""
    columns = [c for c in TEMPLATE if c not in ("email", "employee_id")]
    rows = draw(st.lists(_row(columns, valid=True), min_size=draw(st.integers(0, 5).map(bool)), max_size=4))
    ids = draw(st.permutations(IDS))
    with_id = draw(st.lists(st.integers(0, 3).map(bool), min_size=4, max_size=4))  # mostly with
    return [
        row | {"email": EMAILS[n], "employee_id": ids[n] if with_id[n] else ""} for n, row in enumerate(rows)
    ]


def _near(data: st.DataObject, stored: list[dict[str, str]], columns: list[str]) -> list[dict[str, str]]:
    """The second file: for each of some e-mails, mostly a stored person's row with at most
    two cells changed (one differing column decides between update and unchanged; a second
    one, often blank, tests what an update does with the other cells), else a new row; now
    and then a repeated e-mail. Mostly the stored people move to other addresses
    (a permutation: swaps and chains), their rows naming them by their previous address and
    their id; now and then a row names someone else's previous address (a conflict)."""
    moving = bool(stored) and data.draw(st.integers(0, 3)) > 0
    moved_to = data.draw(st.permutations(EMAILS), label="moves") if moving else EMAILS
    emails = data.draw(st.lists(st.sampled_from(EMAILS), min_size=1, unique=True), label="emails")
    if moving and data.draw(st.integers(0, 3)) > 0:  # everyone stored is in the file, at their new address
        emails = data.draw(st.permutations(list(dict.fromkeys([*moved_to[: len(stored)], *emails]))))
    if data.draw(st.integers(0, 7)) == 0:
        emails.append(emails[0])
    by_address = {moved_to[n]: row for n, row in reversed(list(enumerate(stored)))}
    file = []
    for email in emails:
        choice = data.draw(st.integers(0, 5))
        if email in by_address and choice > 0:
            old = by_address[email]["email"]
            row = dict(by_address[email]) | {"email": email, "previous_email": old if old != email else ""}
        elif stored and choice == 0 and data.draw(st.booleans()):
            other = data.draw(st.sampled_from(stored))
            row = dict(other) | {"email": email, "previous_email": other["email"], "employee_id": ""}
        else:
            row = data.draw(_row([c.name for c in COLUMNS], valid=data.draw(st.booleans()))) | {
                "email": email
            }
            row["employee_id"] = data.draw(st.sampled_from(["", "E5", "E6", "E1"]))
        values = [c for c in columns[3:] if c not in KEYS] or columns
        for name in data.draw(st.lists(st.sampled_from(values), max_size=2)):
            row[name] = data.draw(st.sampled_from(CELLS[name] if name != "email" else EMAILS))
        if data.draw(st.integers(0, 5)) == 0:  # a key otherwise: a conflict, or a change of address
            name = data.draw(st.sampled_from([*KEYS, "email"]))
            row[name] = data.draw(st.sampled_from(CELLS[name] if name != "email" else EMAILS))
        file.append({name: row[name] for name in columns})
    return file


def _csv(columns: list[str], data: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([COLUMNS_BY_NAME[name].header for name in columns])
    writer.writerows([row[name] for name in columns] for row in data)
    return out.getvalue().encode()


def _identity_problems(review: dict[str, Any]) -> list[dict[str, Any]]:
    """The rejections core.identity made (they name people, or a row that is a person already)."""
    return [
        p
        for p in review["errors"]
        if "cannot take it" in p["message"]
        or ("is already " in p["message"] and "@" in p["message"])
        or ("employee id" in p["message"] and "never changes" in p["message"])
    ]


def _messages(problems: list[dict[str, Any]]) -> dict[int, list[tuple[str, str]]]:
    by_row: dict[int, list[tuple[str, str]]] = {}
    for p in problems:
        by_row.setdefault(p["row"], []).append((p["column"], p["message"]))
    return by_row


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stored=_stored(),
    deactivated=st.sets(st.sampled_from(EMAILS), max_size=1),
    columns=st.tuples(
        st.sampled_from([(), ("employee_id",), ("previous_email",), ("employee_id", "previous_email")]),
        st.lists(st.sampled_from([c for c in OPTIONAL if c not in KEYS]), unique=True),
    ).map(lambda drawn: ["first_name", "last_name", "email", *drawn[0], *drawn[1]]),
    second=st.data(),
    mode=st.sampled_from(FILE_MODES),
    blank_cells=st.sampled_from(tuple(BlankCells)),
    match_by=st.sampled_from(tuple(MatchKey)),
)
def test_the_review_predicts_what_the_worker_does_to_each_row(
    database_url: str,
    stored: list[dict[str, str]],
    deactivated: set[str],
    columns: list[str],
    second: st.DataObject,
    mode: str,
    blank_cells: str,
    match_by: MatchKey,
) -> None:
    if match_by == MatchKey.EMPLOYEE_ID and "employee_id" not in columns and second.draw(st.integers(0, 7)):
        columns = [*columns, "employee_id"]  # mostly: without it, such a file is refused whole
    file = _near(second, stored, columns)
    data = _csv(columns, file)
    options = ImportOptions(mode=mode, blank_cells=blank_cells, match_by=match_by)

    async def review_and_apply(conn: Any, tenant: str) -> dict[str, Any] | None:
        review = await review_file(conn, io.BytesIO(data), tenant, options, row_details=True)
        before = await _people(conn, tenant)
        try:
            applied = await apply_import(
                conn, io.BytesIO(data), tenant, mode, blank_cells=blank_cells, match_by=match_by
            )
        except FileRejected:
            assert not review["importable"]
            return None
        after = await _people(conn, tenant)
        imp = await conn.fetchrow("SELECT email_changed FROM imports WHERE id = $1", applied["id"])
        swept = await conn.fetch(
            "SELECT email FROM people WHERE deactivated_by_import = $1 ORDER BY email", applied["id"]
        )
        return {
            "review": review,
            "applied": applied,
            "before": before,
            "after": after,
            "email_changed": imp["email_changed"],
            "swept": [r["email"] for r in swept],
        }

    async def run() -> list[dict[str, Any]]:
        tenant = f"t-rule-{uuid.uuid4().hex[:12]}"
        async with connection(database_url) as conn:
            if stored:
                await apply_import(conn, io.BytesIO(_csv(TEMPLATE, stored)), tenant, Mode.UPSERT)
            await conn.execute(
                "UPDATE people SET status = 'deactivated', deactivated_at = now() "
                "WHERE tenant_id = $1 AND email = ANY($2::text[])",
                tenant,
                sorted(deactivated),
            )
            # The file, then the same file once more (the next night's, which changes less).
            results = []
            for _ in range(2):
                result = await review_and_apply(conn, tenant)
                if result is None:
                    break
                results.append(result)
        return results

    results = asyncio.run(run())
    if not results:
        event("not importable")
    for result in results:
        _check_prediction(result, file, mode)


def _check_prediction(result: dict[str, Any], file: list[dict[str, str]], mode: str) -> None:
    """The review's prediction is what the import did, row by row, and the rows it
    predicted unchanged were settled when the file was recorded (none of the others)."""
    review, applied = result["review"], result["applied"]
    actions = review["rows_preview"]
    assert {r["row"]: OUTCOME_OF_ACTION.get(r["action"], r["action"]) for r in actions} == applied["statuses"]
    unchanged = {r["row"] for r in actions if r["action"] == "unchanged"}
    recorded = set(applied["recorded"])
    assert recorded <= unchanged
    if mode == Mode.ADD_ONLY:
        assert not recorded
    else:
        # Whatever a rename may touch travels to the workers: a row naming a previous
        # address, and a row whose address is one named so. Every other unchanged row
        # was settled at recording, and sent as no message.
        named_before = {row.get("previous_email") for row in file} - {None, ""}
        clear = {
            n
            for n, row in enumerate(file, start=2)
            if not row.get("previous_email") and row["email"] not in named_before
        }
        assert unchanged & clear <= recorded
        valid = sum(1 for status in applied["statuses"].values() if status != "invalid")
        assert applied["messages"] == valid - len(recorded)
        event(f"settled at recording: {min(len(recorded), 2)}")
    # Every row rejected for the same reasons, in the same words.
    worker_errors = {
        row: [(e["column"], e["message"]) for e in errors] for row, errors in applied["errors"].items()
    }
    assert _messages(review["errors"]) == worker_errors
    before, after = result["before"], result["after"]
    by_email = {person["email"]: person for person in after.values()}
    for row in actions:
        if row["action"] == "update":
            person = by_email[row["email"]]
            assert row["changes"] == _differences(before[person["id"]], person, before, after), row["row"]
        else:
            assert "changes" not in row
    assert review["preview"]["email_changes"] == result["email_changed"]
    event(f"renames: {min(result['email_changed'], 2)}")
    event(f"rows rejected for who they are: {min(len(_identity_problems(review)), 2)}")
    if mode == Mode.SYNC:
        assert review["preview"]["deactivate"] == applied["deactivated"]
        assert review["preview"]["deactivate_people"] == result["swept"]


# How an admin reads a person (the export's way): teams by name, secondary ones
# sorted by team key, the manager as the primary team's unless that is themself.
PERSON_AS_READ = """
SELECT p.id, p.email, p.first_name, p.last_name, p.job_title, pt.name AS primary_team,
       (SELECT array_agg(t.name ORDER BY t.name_key) FROM unnest(p.secondary_team_ids) AS s(id)
        JOIN teams t ON t.id = s.id) AS secondary_teams,
       p.role, p.language, p.location, p.employee_id, p.status, m.id AS manager_id
FROM people p
LEFT JOIN teams pt ON pt.id = p.primary_team_id
LEFT JOIN people m ON m.id = nullif(pt.manager_id, p.id)
WHERE p.tenant_id = $1
"""


async def _people(conn: Any, tenant: str) -> dict[int, Any]:
    return {r["id"]: dict(r) for r in await conn.fetch(PERSON_AS_READ, tenant)}


def _differences(
    old: dict[str, Any], new: dict[str, Any], before: dict[int, Any], after: dict[int, Any]
) -> list[dict[str, Any]]:
    """What differs between two readings of a person, as the review's changes say it: the
    manager when another person manages them, by address before and after."""
    fields = [(c.name, c.header) for c in COLUMNS if c.stored_as is not None or c.name == "email"]
    differences = []
    for field, header in [*fields, ("status", "Status")]:
        was, now = old[field], new[field]
        if field == "secondary_teams":
            was, now = "; ".join(was or []) or None, "; ".join(now or []) or None
        if was != now:
            differences.append({"field": field, "header": header, "old": was, "new": now})
    if old["manager_id"] != new["manager_id"]:
        was = before[old["manager_id"]]["email"] if old["manager_id"] else None
        now = after[new["manager_id"]]["email"] if new["manager_id"] else None
        differences.append({"field": "manager", "header": "Manager", "old": was, "new": now})
    return differences
