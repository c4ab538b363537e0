"""The row work called directly (no broker): idempotence, failures, cancel, schema guards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core import imports, rows
from core.db import QUERIES
from core.intake.options import ImportOptions
from core.intake.reading import open_csv
from core.intake.submit import ImportRequest, record_import
from tests.support.imports import person, write_csv

TEAM = [
    person("Mia", "Manager", "mia@example.com", "Sales", "Manager"),
    person("Leo", "Learner", "leo@example.com", "Sales"),
    person("Ann", "Other", "ann@example.com", "Support"),
]


async def started_import(conn: Any, path: Path, tenant: str, mode: str = "upsert") -> tuple[int, list[int]]:
    """Record and start an import without a broker; return its id and pending row numbers."""
    with open_csv(path) as source:
        import_id = await record_import(
            conn, ImportRequest(tenant=tenant, options=ImportOptions(mode=mode)), source
        )
    assert await imports.start_next_import(conn, tenant) == import_id
    sent: list[int] = []

    async def collect(_: int, batch: list[int]) -> None:
        sent.extend(batch)

    await imports.dispatch_pending_rows(conn, import_id, collect)
    return import_id, sent


async def test_applying_the_same_rows_twice_changes_nothing_the_second_time(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    import_id, row_numbers = await started_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)

    first = (await rows.process_rows(conn, import_id, row_numbers)).outcomes
    second = (await rows.process_rows(conn, import_id, row_numbers)).outcomes

    assert first == dict.fromkeys(row_numbers, "created")
    assert second == {}
    counts = await conn.fetchrow(
        "SELECT sum(created) AS c FROM import_counters WHERE import_id = $1", import_id
    )
    assert counts["c"] == 3
    assert await rows.claim_finalize(conn, import_id)
    assert not await rows.claim_finalize(conn, import_id), "only one caller claims the finalizing step"


async def test_a_row_the_database_refuses_fails_alone(conn: Any, tmp_path: Path, tenant: str) -> None:
    import_id, row_numbers = await started_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    # Validation would never let this through; a row recorded by an older
    # version, or edited by hand, could hold it.
    await conn.execute(
        """UPDATE import_rows SET data = jsonb_set(data, '{language}', $2::jsonb)
           WHERE import_id = $1 AND row_number = 3""",
        import_id,
        json.dumps("english"),
    )

    outcomes = (await rows.process_rows(conn, import_id, row_numbers)).outcomes

    assert outcomes == {2: "created", 3: "failed", 4: "created"}
    errors = await conn.fetchval(
        "SELECT errors FROM import_rows WHERE import_id = $1 AND row_number = 3", import_id
    )
    assert "refused" in errors[0]["message"]
    assert await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1", tenant) == 2


async def test_rows_of_a_cancelled_import_are_not_applied(conn: Any, tmp_path: Path, tenant: str) -> None:
    import_id, row_numbers = await started_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    assert await imports.cancel_import(conn, import_id) == (tenant, 0)

    assert (await rows.process_rows(conn, import_id, row_numbers)).outcomes == {}
    assert await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1", tenant) == 0


async def test_add_only_skips_existing_people(conn: Any, tmp_path: Path, tenant: str) -> None:
    first, first_rows = await started_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    await rows.process_rows(conn, first, first_rows)
    await rows.claim_finalize(conn, first)
    assert await imports.finalize_import(conn, first) == "done"
    changed = [person("Leo", "Renamed", "leo@example.com", "Sales"), person("New", "One", "new@example.com")]

    second, second_rows = await started_import(
        conn, write_csv(tmp_path / "b.csv", changed), tenant, "add-only"
    )

    assert (await rows.process_rows(conn, second, second_rows)).outcomes == {2: "skipped", 3: "created"}
    assert await conn.fetchval(
        "SELECT last_name FROM people WHERE email = 'leo@example.com' AND tenant_id = $1", tenant
    ) == ("Learner")


async def test_the_database_refuses_a_person_pointing_at_another_tenants_team(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    other = tenant + "-x"
    for name in (tenant, other):
        import_id, row_numbers = await started_import(conn, write_csv(tmp_path / f"{name}.csv", TEAM), name)
        await rows.process_rows(conn, import_id, row_numbers)
    foreign_team = await conn.fetchval("SELECT id FROM teams WHERE tenant_id = $1 LIMIT 1", other)

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "UPDATE people SET primary_team_id = $2 WHERE tenant_id = $1 AND email = 'leo@example.com'",
            tenant,
            foreign_team,
        )


async def test_a_full_row_queue_pauses_the_dispatcher_where_it_stopped(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    people = [person(f"P{i}", "Row", f"p{i}@example.com") for i in range(2_500)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await imports.start_next_import(conn, tenant) == import_id
    sent: list[int] = []
    rooms = iter([1_500, 100, 0])

    async def collect(_: int, batch: list[int]) -> None:
        sent.extend(batch)

    async def room() -> int:
        return next(rooms)

    paused = await imports.dispatch_pending_rows(conn, import_id, collect, room=room)

    # Room is asked before each page (a page is 1,000 rows at most): 1,000,
    # then 100, then the queue is full.
    assert paused == imports.Dispatched(sent=1_100, claimed=False, resume_after=1_101)
    assert sent == list(range(2, 1_102))
    rest = await imports.dispatch_pending_rows(conn, import_id, collect, after=paused.resume_after)
    assert rest == imports.Dispatched(sent=1_400, claimed=False)
    assert sent == list(range(2, 2_502)), "every row sent once, in order"


async def test_the_cap_keeps_an_import_topped_up_to_its_rows_in_flight(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    people = [person(f"P{i}", "Row", f"p{i}@example.com") for i in range(2_500)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await imports.start_next_import(conn, tenant) == import_id
    sent: list[int] = []

    async def collect(_: int, batch: list[int]) -> None:
        sent.extend(batch)

    async def dispatch(after: int) -> imports.Dispatched:
        return await imports.dispatch_pending_rows(conn, import_id, collect, after=after, cap=1_200)

    # Rows 2..2501. The first call counts nothing in flight: 1,200 rows.
    first = await dispatch(0)
    assert first == imports.Dispatched(sent=1_200, claimed=False, resume_after=1_201, at_cap=True)
    assert await imports.rows_in_flight(conn, import_id, 1_201, 2_400) == 1_200
    # 500 of them settle: 700 in flight, so 500 more. The batch saw 2,000 rows left.
    applied = await rows.process_rows(conn, import_id, sent[:500])
    assert applied.remaining == 2_000
    assert not applied.may_be_last(1_200) and applied.may_be_last(2_000) and applied.may_be_last(0)
    second = await dispatch(1_201)
    assert second == imports.Dispatched(sent=500, claimed=False, resume_after=1_701, at_cap=True)
    # Nothing settled since: nothing more, and the same place to go on from.
    assert await dispatch(1_701) == imports.Dispatched(sent=0, claimed=False, resume_after=1_701, at_cap=True)
    # Everything sent settles: the last 800 rows, and no continuation.
    await rows.process_rows(conn, import_id, sent[500:])
    assert await dispatch(1_701) == imports.Dispatched(sent=800, claimed=False)
    assert sent == list(range(2, 2_502)), "every row sent once, in order"
    last = await rows.process_rows(conn, import_id, sent[1_700:])
    assert last.remaining == 0 and last.may_be_last(1)
    assert await rows.claim_finalize(conn, import_id)


async def test_the_row_queue_bounds_an_import_below_its_cap(conn: Any, tmp_path: Path, tenant: str) -> None:
    people = [person(f"P{i}", "Row", f"p{i}@example.com") for i in range(600)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    assert await imports.start_next_import(conn, tenant) == import_id
    sent: list[int] = []
    rooms = iter([300, 0])

    async def collect(_: int, batch: list[int]) -> None:
        sent.extend(batch)

    async def room() -> int:
        return next(rooms)

    paused = await imports.dispatch_pending_rows(conn, import_id, collect, room=room, cap=1_000)

    # MAX_QUEUE_BACKLOG stays the global bound: paused by the queue, not the cap.
    assert paused == imports.Dispatched(sent=300, claimed=False, resume_after=301, at_cap=False)


async def test_an_import_whose_last_row_is_sent_at_the_cap_leaves_no_continuation(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    import_id, _ = await started_import(conn, write_csv(tmp_path / "a.csv", TEAM), tenant)
    sent: list[int] = []

    async def collect(_: int, batch: list[int]) -> None:
        sent.extend(batch)

    done = await imports.dispatch_pending_rows(conn, import_id, collect, cap=len(TEAM))

    assert (done, sent) == (imports.Dispatched(sent=3, claimed=False), [2, 3, 4])


async def test_counting_rows_in_flight_reads_a_bounded_range_of_the_primary_key(
    conn: Any, tmp_path: Path, tenant: str
) -> None:
    people = [person(f"P{i}", "Row", f"p{i}@example.com") for i in range(3_000)]
    with open_csv(write_csv(tmp_path / "a.csv", people)) as source:
        import_id = await record_import(conn, ImportRequest(tenant=tenant), source)
    await conn.execute("ANALYZE import_rows")
    # As the worker pools plan it: with the values, not a generic plan.
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    plan = json.dumps(
        await conn.fetchval("EXPLAIN (FORMAT JSON) " + QUERIES["rows_in_flight"], import_id, 2_500, 400)
    )

    assert "import_rows_pkey" in plan and "Seq Scan" not in plan, plan
    assert "2100" in plan, "bounded below: the rows before the window are not read"
    assert await imports.rows_in_flight(conn, import_id, 2_500, 400) == 400
