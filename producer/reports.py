"""What the CLI and services read back: an import's status, its failed rows,
and a tenant's people, as plain data and CSV.

Every CSV written here goes through ``write_csv_row``, which neutralises cells
a spreadsheet would execute as formulas.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

import asyncpg

from core import status as worker_status
from core.columns import TEMPLATE_COLUMNS, TEMPLATE_HEADERS
from core.errors import ImportNotFound
from core.intake.validation import neutralise_formula
from core.vocabulary import FINAL_STATES as FINAL_STATES
from core.vocabulary import ColumnKind  # re-exported for the status pollers
from producer.queries import QUERIES

GET_IMPORT = QUERIES["get_import"]
FAILED_ROWS = QUERIES["failed_rows"]
EXPORT_PEOPLE = QUERIES["export_people"]

EXPORT_HEADERS = (*TEMPLATE_HEADERS, "Status", "Manager email", "Invite status")


async def import_status(
    conn: asyncpg.Connection, import_id: int, tenant: str | None = None
) -> dict[str, Any]:
    """The status JSON of the command-line contract (``status --json``; ``core.status``).

    With ``tenant``, an import of another tenant is reported as not found.
    """
    status = await worker_status.import_status(conn, import_id)
    if tenant is not None and status["tenant"] != tenant:
        raise ImportNotFound(f"no import {import_id} for tenant {tenant!r}")
    return status


def write_csv_row(writer: Any, values: Iterable[Any]) -> None:
    """Write one row with formula-looking cells neutralised."""
    writer.writerow([neutralise_formula("" if v is None else str(v)) for v in values])


async def write_failed_rows(conn: asyncpg.Connection, import_id: int, out: TextIO) -> int:
    """The rows that were rejected or failed, original values plus a reason; returns their count."""
    imp = await conn.fetchrow(GET_IMPORT, import_id)
    if imp is None:
        raise ImportNotFound(f"no import {import_id}")
    header = list(imp["columns"].get("header", []))
    writer = csv.writer(out)
    write_csv_row(writer, ["Row", *header, "Reason"])
    written = 0
    async with conn.transaction(readonly=True):
        async for row in conn.cursor(FAILED_ROWS, import_id):
            cells = list(row["raw"]) + [""] * max(0, len(header) - len(row["raw"]))
            reasons = "; ".join(
                (f"{e['column']}: " if e.get("column") else "") + e["message"] for e in row["errors"] or []
            )
            write_csv_row(writer, [row["row_number"], *cells, reasons])
            written += 1
    return written


async def write_people(conn: asyncpg.Connection, tenant: str, out: TextIO) -> int:
    """Everyone of the tenant: template columns plus status, manager and invite status."""
    writer = csv.writer(out)
    write_csv_row(writer, EXPORT_HEADERS)
    written = 0
    async with conn.transaction(readonly=True):
        async for person in conn.cursor(EXPORT_PEOPLE, tenant):
            values = [
                person[field.name].capitalize() if field.kind == ColumnKind.ROLE else person[field.name]
                for field in TEMPLATE_COLUMNS
            ]
            write_csv_row(
                writer, [*values, person["status"], person["manager_email"], person["invite_status"] or ""]
            )
            written += 1
    return written
