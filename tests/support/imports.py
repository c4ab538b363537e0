"""Helpers for tests that import files: write a CSV, import it, wait for the end."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from producer.fields import TEMPLATE_HEADERS
from producer.reports import FINAL_STATES, import_status, write_people
from producer.submit import ImportRequest, submit_import_async

Row = Sequence[str]


def person(
    first: str,
    last: str,
    email: str,
    team: str = "",
    role: str = "",
    *,
    title: str = "",
    secondary: str = "",
    language: str = "",
    location: str = "",
) -> list[str]:
    """A template row in the template's column order."""
    return [first, last, email, title, team, secondary, role, language, location]


def write_csv(path: Path, rows: Sequence[Row], header: Sequence[str] = TEMPLATE_HEADERS) -> Path:
    """Write ``rows`` under ``header`` as a UTF-8 CSV."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


async def wait_final(conn: Any, import_id: int, timeout: float = 60) -> dict[str, Any]:
    """Poll the import until it reaches a final state; return its status."""
    deadline = time.monotonic() + timeout
    while True:
        status = await import_status(conn, import_id)
        if status["state"] in FINAL_STATES:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"import {import_id} still {status['state']} after {timeout}s: {status}")
        await asyncio.sleep(0.05)


async def submit(path: Path, tenant: str, mode: str = "upsert", **options: Any) -> int:
    """Submit an import the way the CLI does."""
    return await submit_import_async(path, ImportRequest(tenant=tenant, mode=mode, **options))


async def run_import(
    conn: Any, path: Path, tenant: str, mode: str = "upsert", **options: Any
) -> dict[str, Any]:
    """Submit an import and return its final status."""
    import_id = await submit(path, tenant, mode, **options)
    return await wait_final(conn, import_id)


async def export_rows(conn: Any, tenant: str) -> dict[str, dict[str, str]]:
    """The tenant's export, keyed by e-mail."""
    out = io.StringIO()
    await write_people(conn, tenant, out)
    out.seek(0)
    return {row["Email"]: row for row in csv.DictReader(out)}
