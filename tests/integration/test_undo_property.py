"""The undo's promise on generated imports: undoing the last import of any sequence puts
every person and every team's manager back as they were before it, the people it created
deactivated, except for a value changed since, which is kept."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.columns import COLUMNS
from core.db import connection
from core.vocabulary import FILE_MODES, BlankCells
from tests.integration.test_undo import STATE
from tests.integration.test_vocabulary import EMAILS, OPTIONAL, _csv, _row
from tests.support.imports import apply_import, apply_undo

ALL = [c.name for c in COLUMNS]


async def _state(conn: Any, tenant: str) -> tuple[dict[str, dict[str, Any]], dict[int, int | None]]:
    rows = await conn.fetch(f"SELECT email, {', '.join(STATE)} FROM people WHERE tenant_id = $1", tenant)
    teams = await conn.fetch("SELECT id, manager_id FROM teams WHERE tenant_id = $1", tenant)
    return {r["email"]: {c: r[c] for c in STATE} for r in rows}, {t["id"]: t["manager_id"] for t in teams}


_file = st.tuples(
    st.lists(st.sampled_from(OPTIONAL), unique=True).map(lambda o: ["first_name", "last_name", "email", *o]),
    st.data(),
    st.sampled_from(FILE_MODES),
    st.sampled_from(tuple(BlankCells)),
)


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(_file, min_size=1, max_size=3),
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
            for number, (columns, data, mode, blank_cells) in enumerate(files):
                rows = data.draw(
                    st.lists(_row(ALL, valid=True), min_size=1, max_size=4, unique_by=lambda r: r["email"])
                )
                if number == len(files) - 1:
                    before, teams_before = await _state(conn, tenant)
                body = io.BytesIO(_csv(columns, rows))
                last = await apply_import(conn, body, tenant, mode, blank_cells=blank_cells)
            assert last is not None
            if edit is not None:  # another admin changes a job title after the import
                await conn.execute(
                    "UPDATE people SET job_title = $3 WHERE tenant_id = $1 AND email = $2", tenant, *edit
                )
            written, _ = await _state(conn, tenant)
            await apply_undo(conn, last["id"], batch_size=batch_size)
            after, teams_after = await _state(conn, tenant)

        for email, person in after.items():
            if email not in before:
                assert person["status"] == "deactivated", email
                continue
            expected = dict(before[email])
            if (
                edit is not None
                and edit[0] == email
                and written[email]["job_title"] != before[email]["job_title"]
            ):
                expected["job_title"] = written[email]["job_title"]  # changed since: kept
            assert person == expected, email
        assert {t: m for t, m in teams_after.items() if t in teams_before} == teams_before

    asyncio.run(run())
