"""A batch of rows finds its people and teams one index probe per key, whatever the statistics say.

The statistics of a real database were taken before a tenant's first large
import: they know other tenants' people, not this one's, and estimate its
people and teams at one row. With the per-batch lookups written as
``tenant_id = $1 AND email = ANY($2)`` (or a join on the team's name), the
planner then scanned all the tenant's people (teams) for every batch and
filtered them: 10-75 ms a batch, growing with the import. This test builds that
state in a database of its own and reads the plans of the statements a batch
runs, with the parameters of the new tenant, as the worker's pool plans them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

import schema
from core.db import QUERIES, connect
from tests.support.environment import SERVER_URL

OLD_PEOPLE, NEW_PEOPLE, NEW_TEAMS = 2_000, 20_000, 1_000


@pytest.fixture
async def stale_statistics() -> AsyncIterator[asyncpg.Connection]:
    """A database whose statistics know tenant "old" only, while "new" holds many people and teams."""
    name = f"bulk_import_batch_plans_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(SERVER_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await connect(SERVER_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        await schema.migrate(conn)
        for table in ("people", "teams"):
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
        await conn.execute("INSERT INTO tenants (id, name) VALUES ('old', 'Old'), ('new', 'New')")
        await conn.execute(
            "INSERT INTO people (tenant_id, email, first_name, last_name)"
            " SELECT 'old', 'p' || g || '@old.example.com', 'Old', 'Person' FROM generate_series(1, $1) g",
            OLD_PEOPLE,
        )
        await conn.execute("ANALYZE people, teams")
        await conn.execute(
            "INSERT INTO teams (tenant_id, name) SELECT 'new', 'Team ' || g FROM generate_series(1, $1) g",
            NEW_TEAMS,
        )
        # Half of the new tenant's people have employee ids (an import adopted them).
        await conn.execute(
            "INSERT INTO people (tenant_id, email, first_name, last_name, employee_id)"
            " SELECT 'new', 'p' || g || '@new.example.com', 'New', 'Person',"
            " CASE WHEN g % 2 = 0 THEN 'E' || g END FROM generate_series(1, $1) g",
            NEW_PEOPLE,
        )
        # As the worker's pool plans: for the parameters given.
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def scans(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """Every node of ``plan`` that reads ``table``."""
    reads = plan.get("Relation Name") == table and plan["Node Type"] != "ModifyTable"
    found = [plan] if reads else []
    for child in plan.get("Plans", []):
        found += scans(child, table)
    return found


async def plan_of(conn: asyncpg.Connection, query: str, *args: Any) -> dict[str, Any]:
    """The plan the statement ran with (EXPLAIN ANALYZE), its writes and locks rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + QUERIES[query], *args)
    finally:
        await transaction.rollback()
    plan: dict[str, Any] = json.loads(raw)[0]["Plan"]
    return plan


def assert_probes(plan: dict[str, Any], table: str, key: str) -> None:
    nodes = scans(plan, table)
    assert nodes, f"no scan of {table} in {json.dumps(plan)[:2000]}"
    for node in nodes:
        assert key in node.get("Index Cond", ""), f"{table} not probed by {key}: {json.dumps(node)}"
        assert node.get("Rows Removed by Filter", 0) == 0, f"{table} scanned and filtered: {json.dumps(node)}"


async def test_a_batch_locks_its_people_one_probe_each(stale_statistics: asyncpg.Connection) -> None:
    emails = sorted(f"p{n}@new.example.com" for n in range(100, 140))
    plan = await plan_of(stale_statistics, "lock_people", "new", emails)
    assert_probes(plan, "people", "email")
    assert sum(node["Actual Rows"] * node["Actual Loops"] for node in scans(plan, "people")) == len(emails)


async def test_a_batch_finds_its_teams_one_probe_each(stale_statistics: asyncpg.Connection) -> None:
    names = ["Team 7", "team 700", "TEAM 999", "No such team"]
    plan = await plan_of(stale_statistics, "find_teams", "new", names)
    assert_probes(plan, "teams", "name_key")
    ids = await stale_statistics.fetch(QUERIES["find_teams"], "new", names)
    assert [r["id"] is None for r in ids] == [False, False, False, True]


async def test_a_batch_updates_its_people_by_id(stale_statistics: asyncpg.Connection) -> None:
    ids = [
        r["id"]
        for r in await stale_statistics.fetch(
            "SELECT id FROM people WHERE tenant_id = 'new' ORDER BY id LIMIT 30 OFFSET 5000"
        )
    ]
    n = len(ids)
    text = ["x"] * n
    # The import the replaced values are recorded for (import_changes); the
    # person as the statement found them is read by id too.
    import_id = await stale_statistics.fetchval(
        "INSERT INTO imports (tenant_id, mode, invites) VALUES ('new', 'upsert', 'none') RETURNING id"
    )
    plan = await plan_of(
        stale_statistics,
        "update_people",
        "new",
        import_id,
        ids,
        text,
        text,
        [None] * n,
        ["learner"] * n,
        [None] * n,
        [None] * n,
        [None] * n,
        [None] * n,
        ["{}"] * n,
    )
    assert_probes(plan, "people", "id")


async def identity_plans(
    conn: asyncpg.Connection, rows: list[tuple[int, str, str | None, str | None]], *queries: tuple[str, Any]
) -> list[dict[str, Any]]:
    """The plans core.identity's statements run with over ``rows`` (row, e-mail, id, previous
    address) in its scratch table, each after the ones before it; all rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    plans = []
    try:
        await conn.execute(QUERIES["identity_create_table"])
        await conn.executemany(
            "INSERT INTO identity_rows (row_number, email, employee_id, previous_email)"
            " VALUES ($1, $2, $3, $4)",
            rows,
        )
        await conn.execute(QUERIES["identity_analyze"])
        for query, *args in queries:
            raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + QUERIES[query], *args)
            plans.append(json.loads(raw)[0]["Plan"])
    finally:
        await transaction.rollback()
    return plans


def rows_read(plan: dict[str, Any], table: str) -> int:
    return sum(int(node["Actual Rows"] * node["Actual Loops"]) for node in scans(plan, table))


async def test_who_each_row_is_is_one_probe_per_key(stale_statistics: asyncpg.Connection) -> None:
    """The id path: a domain migration's rows name each person by employee id under a new
    address, or by a previous address; each key is one index probe, never a scan of the
    tenant's people (stale statistics estimate them at one row)."""
    by_id = [(n, f"p{n}@moved.example.com", f"E{n}", None) for n in range(1000, 1080, 2)]
    by_previous = [
        (n, f"p{n}@moved.example.com", None, f"p{n}@new.example.com") for n in range(2001, 2041, 2)
    ]
    rows = by_id + by_previous
    lock, match, taken = await identity_plans(
        stale_statistics,
        rows,
        ("identity_lock_people", "new"),
        ("identity_match", "new", True),
        ("identity_taken_addresses", "new", False),
    )
    for plan in (lock, match):
        for node in scans(plan, "people"):
            condition = node.get("Index Cond", "")
            assert "email" in condition or "employee_id" in condition or "id =" in condition, json.dumps(node)
            assert node.get("Rows Removed by Filter", 0) == 0, json.dumps(node)
    assert_probes(taken, "people", "email")
    # A few people read per row (each key's probe, then the person found by id), never the
    # tenant's 20,000.
    assert rows_read(lock, "people") <= 4 * len(rows)
    assert rows_read(match, "people") <= 4 * len(rows)


async def test_the_renames_write_their_people_by_id(stale_statistics: asyncpg.Connection) -> None:
    rows = [(n, f"p{n}@moved.example.com", f"E{n}", None) for n in range(1000, 1060, 2)]
    import_id = await stale_statistics.fetchval(
        "INSERT INTO imports (tenant_id, mode, invites) VALUES ('new', 'sync', 'none') RETURNING id"
    )
    *_, vacate, rename = await identity_plans(
        stale_statistics,
        rows,
        ("identity_match", "new", True),
        ("identity_same_person",),
        ("identity_taken_addresses", "new", False),
        ("identity_vacate_addresses", "new"),
        ("identity_rename_people", "new", import_id, False),
    )
    assert_probes(vacate, "people", "id")
    assert_probes(rename, "people", "id")
