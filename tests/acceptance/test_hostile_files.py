"""Acceptance: files that cannot be imported, through ``run`` and ``review``.

Each is refused with one line naming what is wrong (and where: row, column),
exit 2, and leaves nothing behind: no tenant, no import, no row. The faults
that show up only deep in a file (past the part read to sniff its format) are
the ones that matter most here: by then the import has started writing.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.columns import TEMPLATE_HEADERS
from tests.acceptance.test_cli import cli, one_line_error

HEADER = ",".join(TEMPLATE_HEADERS).encode() + b"\n"
# Past the 64 KB the reader sniffs: the import is streaming rows into PostgreSQL by then.
VALID_ROWS = 1_500
BAD_ROW = VALID_ROWS + 2


def valid_prefix() -> bytes:
    return HEADER + b"".join(
        f"First{i},Last{i},p{i}@example.com,Title,Team,,,,Paris\n".encode() for i in range(VALID_ROWS)
    )


def archive(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for name in names:
            out.writestr(name, "<x/>")
    return buffer.getvalue()


HOSTILE: dict[str, tuple[Callable[[], bytes], list[str]]] = {
    "empty": (lambda: b"", ["the file is empty"]),
    # Blank lines under the header count as nothing.
    "header_only": (lambda: HEADER + b"\n,,,\n", ["no data rows under its header (row 1)"]),
    "binary": (lambda: bytes(range(256)) * 64, ["NUL"]),
    "zip": (lambda: archive(["people.csv"]), ["ZIP archive"]),
    "xlsx": (lambda: archive(["[Content_Types].xml", "xl/workbook.xml"]), ["Excel workbook"]),
    "enormous_line": (
        lambda: valid_prefix() + b"A,B," + b"x" * 1_100_000 + b"\n",
        [f"row {BAD_ROW}", "longer than 1,000,000 characters"],
    ),
    "megabyte_field": (
        lambda: valid_prefix() + b'A,"' + b"y" * 900_000 + b'",a@example.com\n',
        [f"row {BAD_ROW}, column 2", "more than 10,000 characters"],
    ),
    "hundred_thousand_columns": (
        lambda: ",".join(f"c{i}" for i in range(100_000)).encode() + b"\n",
        ["row 1", "100000 columns", "200 allowed"],
    ),
    "nul_mid_file": (lambda: valid_prefix() + b"A,B,\x00c@example.com\n", [f"row {BAD_ROW}", "NUL"]),
    "invalid_utf8_mid_file": (
        # UTF-8 from the start (José), then a Latin-1 byte far down the file.
        lambda: valid_prefix().replace(b"First0,", "José,".encode(), 1) + b"Ren\xe9,B,c@example.com\n",
        [f"row {BAD_ROW}", "UTF-8"],
    ),
}


async def _left_behind(conn: Any, tenant: str) -> dict[str, int]:
    return {
        "tenants": await conn.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant),
        "imports": await conn.fetchval("SELECT count(*) FROM imports WHERE tenant_id = $1", tenant),
        "rows": await conn.fetchval(
            "SELECT count(*) FROM import_rows r JOIN imports i ON i.id = r.import_id WHERE i.tenant_id = $1",
            tenant,
        ),
        "people": await conn.fetchval("SELECT count(*) FROM people WHERE tenant_id = $1", tenant),
    }


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("command", ["run", "review"])
async def test_a_hostile_file_is_refused_and_leaves_nothing_behind(
    conn: Any, tmp_path: Path, tenant: str, kind: str, command: str
) -> None:
    make, words = HOSTILE[kind]
    path = tmp_path / "people.csv"
    path.write_bytes(make())
    args = ["run", path, "--tenant", tenant, "--mode", "sync"] if command == "run" else []
    args = args or ["review", path, "--tenant", tenant, "--mode", "sync"]

    result = cli(*args)

    if kind == "header_only" and command == "review":
        # The file is read, so the review reports it, with the verdict last.
        assert result.returncode == 2, result
        line = result.stdout.strip().splitlines()[-1]
    else:
        line = one_line_error(result, exit_code=2)

    for word in words:
        assert word in line, line
    assert await _left_behind(conn, tenant) == {"tenants": 0, "imports": 0, "rows": 0, "people": 0}
