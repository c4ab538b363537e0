"""Every named statement is used by the code and is valid SQL for the migrated schema.

A statement that nothing runs is dead weight that misleads the next reader; a
statement that no longer matches the schema (a renamed column, a dropped
table) would otherwise fail only when its rare path runs. PostgreSQL parses,
analyses and plans each one here without running it (asyncpg's prepare).
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from core.db import QUERIES as CORE_QUERIES
from core.db import connection
from core.intake.queries import QUERIES as INTAKE_QUERIES
from core.sources.queries import QUERIES as SOURCES_QUERIES
from producer.queries import QUERIES as PRODUCER_QUERIES
from tests.support.drills import create_database, drop_database
from tests.support.environment import SERVER_URL, TEST_DATABASE

ROOT = Path(__file__).resolve().parents[2]
# The review's and core.identity's statements run against their scratch tables, which these create.
SCRATCH_TABLES = ("review_create_rows_table", "identity_create_table")


PACKAGES = {
    "core": CORE_QUERIES,
    "core/intake": INTAKE_QUERIES,
    "core/sources": SOURCES_QUERIES,
    "producer": PRODUCER_QUERIES,
}
# Where a statement is taken by name: ``NAME = QUERIES["name"]`` at a module's top.
LOOKUP = re.compile(r"""QUERIES\[['"]([a-z_0-9]+)['"]\]""")


def _modules_of(package: str) -> list[Path]:
    """The package's modules, without a subpackage that has statements of its own."""
    others = [ROOT / other for other in PACKAGES if other.startswith(package + "/")]
    paths = sorted((ROOT / package).rglob("*.py"))
    return [path for path in paths if not any(path.is_relative_to(other) for other in others)]


@pytest.mark.parametrize(("package", "queries"), PACKAGES.items())
def test_every_named_statement_is_run_by_its_own_package(package: str, queries: dict[str, str]) -> None:
    taken = {
        name for path in _modules_of(package) for name in LOOKUP.findall(path.read_text(encoding="utf-8"))
    }
    assert sorted(set(queries) - taken) == [], "statements nothing runs"
    assert sorted(taken - set(queries)) == [], "statements of another package (or of none)"


def test_every_statement_is_taken_by_name_when_its_module_loads() -> None:
    """A look-up inside a function would fail only when that function runs: all are at the top."""
    late = []
    for path in sorted((ROOT / "core").rglob("*.py")) + sorted((ROOT / "producer").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {
            id(node)
            for statement in tree.body
            for node in ast.walk(statement)
            if isinstance(statement, ast.Assign)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and getattr(node.value, "id", None) == "QUERIES"
                and id(node) not in top
            ):
                late.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert late == []


def test_a_name_no_file_defines_fails_as_the_module_loads(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "misspelt.py").write_text('from core.db import QUERIES\nSETTLE = QUERIES["setle_rows"]\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyError, match=r"no statement 'setle_rows' in core/sql/\*\.sql"):
        importlib.import_module("misspelt")


async def test_every_named_statement_prepares_against_the_migrated_schema(conn: Any) -> None:
    statements = {name: sql for queries in PACKAGES.values() for name, sql in queries.items()}
    assert len(statements) == sum(map(len, PACKAGES.values())), "a name owned twice"
    refused: dict[str, str] = {}
    transaction = conn.transaction()
    await transaction.start()
    try:
        for scratch in SCRATCH_TABLES:
            await conn.execute(statements[scratch])
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
            await conn.execute(CORE_QUERIES["ensure_tenant"], "t")
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
                "EXPLAIN (ANALYZE, FORMAT JSON) " + INTAKE_QUERIES["reject_duplicate_emails"],
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
