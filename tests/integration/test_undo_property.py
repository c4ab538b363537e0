"""The undo's promise on generated imports: undoing the last import of any sequence puts
every person and every team's manager back as they were before it (their e-mail address
included, whatever renames, swaps and chains it made), the people it created deactivated,
except for a value changed since, and an address someone who keeps it holds now, which are
kept (and reported)."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.columns import COLUMNS
from core.db import connection
from core.errors import FileRejected
from core.vocabulary import FILE_MODES, BlankCells, MatchKey
from tests.integration.test_undo import STATE
from tests.integration.test_vocabulary import CELLS, EMAILS, KEYS, OPTIONAL, _csv, _row
from tests.support.imports import apply_import, apply_undo

ALL = [c.name for c in COLUMNS]


async def _state(conn: Any, tenant: str) -> tuple[dict[int, dict[str, Any]], dict[int, int | None]]:
    """Every person by id (their address too), and each team's manager."""
    columns = ", ".join(STATE)
    rows = await conn.fetch(f"SELECT id, email, {columns} FROM people WHERE tenant_id = $1", tenant)
    teams = await conn.fetch("SELECT id, manager_id FROM teams WHERE tenant_id = $1", tenant)
    people = {r["id"]: {c: r[c] for c in ("email", *STATE)} for r in rows}
    return people, {t["id"]: t["manager_id"] for t in teams}


async def _kept_addresses(conn: Any, undo_id: int) -> set[str]:
    """The addresses the undo reported it kept (its report's Email lines: the address now)."""
    rows = await conn.fetch("SELECT raw FROM import_rows WHERE import_id = $1", undo_id)
    return {r["raw"][0] for r in rows if r["raw"][2] == "Email"}


_file = st.tuples(
    st.tuples(
        st.sampled_from([(), ("previous_email",), ("employee_id", "previous_email")]),
        st.lists(st.sampled_from([c for c in OPTIONAL if c not in KEYS]), unique=True),
    ).map(lambda drawn: ["first_name", "last_name", "email", *drawn[0], *drawn[1]]),
    st.data(),
    st.sampled_from(FILE_MODES),
    st.sampled_from(tuple(BlankCells)),
    st.sampled_from(tuple(MatchKey)),
)


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(_file, min_size=2, max_size=3),
    edit=st.one_of(st.none(), st.tuples(st.sampled_from(EMAILS), st.sampled_from(["Edited", None]))),
    batch_size=st.integers(1, 3),
)
def test_undoing_the_last_import_restores_everyone_but_what_changed_since(
    database_url: str, files: list[Any], edit: tuple[str, str | None] | None, batch_size: int
) -> None:
    async def run() -> None:
        tenant = f"t-undo-{uuid.uuid4().hex[:12]}"
        async with connection(database_url) as conn:
            last = None
            for number, (columns, data, mode, blank_cells, match_by) in enumerate(files):
                rows = data.draw(
                    st.lists(_row(ALL, valid=True), min_size=1, max_size=4, unique_by=lambda r: r["email"])
                )
                for row in rows:  # the keys blank or not: renames by id or previous address, conflicts
                    row |= {key: data.draw(st.sampled_from(CELLS[key])) for key in KEYS}
                state = await _state(conn, tenant)
                last_file = number == len(files) - 1
                if last_file and state[0] and data.draw(st.integers(0, 3)):  # everyone moves, mostly
                    moved_to = dict(zip(EMAILS, data.draw(st.permutations(EMAILS)), strict=True))
                    rows = [
                        rows[n % len(rows)]
                        | {
                            "first_name": p["first_name"],
                            "last_name": p["last_name"],
                            "email": moved_to[p["email"]],
                            "previous_email": p["email"],
                            "employee_id": p["employee_id"] or "",
                        }
                        for n, p in enumerate(state[0].values())
                    ]
                body = io.BytesIO(_csv(columns, rows))
                try:
                    last = await apply_import(
                        conn, body, tenant, mode, blank_cells=blank_cells, match_by=match_by
                    )
                except FileRejected:  # by employee id without the column: nothing recorded
                    continue
                before, teams_before = state  # as it was before the last import recorded
            if last is None or last["state"] != "done":
                return
            if edit is not None:  # another admin changes a job title after the import
                await conn.execute(
                    "UPDATE people SET job_title = $3 WHERE tenant_id = $1 AND email = $2", tenant, *edit
                )
            written, _ = await _state(conn, tenant)
            undone = await apply_undo(conn, last["id"], batch_size=batch_size)
            after, teams_after = await _state(conn, tenant)
            kept = await _kept_addresses(conn, undone["id"])
            given_back = min(undone["undo"]["emails_restored"], 2)
            event(f"addresses given back: {given_back}, kept: {min(len(kept), 1)}")

        for person_id, person in after.items():
            if person_id not in before:
                assert person["status"] == "deactivated", person
                continue
            expected = dict(before[person_id])
            if (
                edit is not None
                and edit[0] == written[person_id]["email"]
                and written[person_id]["job_title"] != before[person_id]["job_title"]
            ):
                expected["job_title"] = written[person_id]["job_title"]  # changed since: kept
            if written[person_id]["email"] in kept:  # someone who keeps it holds the old address
                expected["email"] = written[person_id]["email"]
            assert person == expected, person_id
        assert {t: m for t, m in teams_after.items() if t in teams_before} == teams_before

    asyncio.run(run())
