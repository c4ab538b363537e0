"""Every named statement is used by the code and is valid SQL for the migrated schema.

A statement that nothing runs is dead weight that misleads the next reader; a
statement that no longer matches the schema (a renamed column, a dropped
table) would otherwise fail only when its rare path runs. PostgreSQL parses,
analyses and plans each one here without running it (asyncpg's prepare).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.db import QUERIES as WORKER_QUERIES
from core.db import connection
from producer.queries import QUERIES as PRODUCER_QUERIES
from tests.support.drills import create_database, drop_database
from tests.support.environment import SERVER_URL, TEST_DATABASE

ROOT = Path(__file__).resolve().parents[2]
# The review's statements run against its scratch table, which this creates.
SCRATCH_TABLE = "review_create_rows_table"


def _code_of(package: str) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / package).rglob("*.py")))


@pytest.mark.parametrize(("package", "queries"), [("worker", WORKER_QUERIES), ("producer", PRODUCER_QUERIES)])
def test_every_named_statement_is_run_by_its_own_package(package: str, queries: dict[str, str]) -> None:
    code = _code_of(package)
    unused = [name for name in queries if not re.search(rf"""['"]{re.escape(name)}['"]""", code)]
    assert unused == []


async def test_every_named_statement_prepares_against_the_migrated_schema(conn: Any) -> None:
    statements = {**WORKER_QUERIES, **PRODUCER_QUERIES}
    assert len(statements) == len(WORKER_QUERIES) + len(PRODUCER_QUERIES), "a name owned twice"
    refused: dict[str, str] = {}
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(statements[SCRATCH_TABLE])
        for name, sql in statements.items():
            try:
                async with conn.transaction():  # a savepoint: one refusal must not hide the others
                    await conn.prepare(sql)
            except Exception as exc:  # any refusal is reported with its statement's name
                refused[name] = f"{type(exc).__name__}: {exc}"
    finally:
        await transaction.rollback()
    assert refused == {}


async def test_repeated_emails_are_found_once_whatever_the_statistics_say(database_url: str) -> None:
    """Statistics that know only an earlier import made this statement quadratic: the
    planner expected one row of the new import and re-ran the window over all its rows
    for every one of them (10,000 rows: 115 s). A database of its own, whose
    statistics know exactly one earlier import, as in production after a finalize."""
    name = f"{TEST_DATABASE}_stats"
    url = await create_database(SERVER_URL, name)
    try:
        async with connection(url) as conn:
            await conn.execute(PRODUCER_QUERIES["ensure_tenant"], "t")
            new_import = (
                "INSERT INTO imports (tenant_id, mode, invites, filename)"
                " VALUES ('t', 'upsert', 'none', 'p.csv') RETURNING id"
            )
            first = await conn.fetchval(new_import)
            second = await conn.fetchval(new_import)
            rows = [(first, n, f"a{n}@example.com") for n in range(2, 2_002)]
            # The second import repeats 100 e-mails.
            rows += [(second, n, f"b{n % 2_900}@example.com") for n in range(2, 3_002)]
            insert = (
                "INSERT INTO import_rows (import_id, row_number, email, raw, status)"
                " VALUES ($1, $2, $3, '[]'::jsonb, 'pending')"
            )
            await conn.executemany(insert, rows[:2_000])
            await conn.execute("ANALYZE import_rows")  # knows the first import only
            await conn.executemany(insert, rows[2_000:])
            plan = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + PRODUCER_QUERIES["reject_duplicate_emails"],
                second,
                "Email",
                2,
            )
            invalid = await conn.fetchval(
                "SELECT count(*) FROM import_rows WHERE import_id = $1 AND status = 'invalid'", second
            )
    finally:
        await drop_database(SERVER_URL, name)

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]

    tree = json.loads(plan) if isinstance(plan, str) else plan
    windows = [n for n in nodes(tree[0]["Plan"]) if n["Node Type"] == "WindowAgg"]
    assert windows and all(n["Actual Loops"] == 1 for n in windows), windows
    assert invalid == 100
