"""Every named statement is used by the code and is valid SQL for the migrated schema.

A statement that nothing runs is dead weight that misleads the next reader; a
statement that no longer matches the schema (a renamed column, a dropped
table) would otherwise fail only when its rare path runs. PostgreSQL parses,
analyses and plans each one here without running it (asyncpg's prepare).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from producer.queries import QUERIES as PRODUCER_QUERIES
from worker.db import QUERIES as WORKER_QUERIES

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
