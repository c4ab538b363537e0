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
        await conn.execute(
            "INSERT INTO people (tenant_id, email, first_name, last_name)"
            " SELECT 'new', 'p' || g || '@new.example.com', 'New', 'Person' FROM generate_series(1, $1) g",
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
        ["{}"] * n,
    )
    assert_probes(plan, "people", "id")
