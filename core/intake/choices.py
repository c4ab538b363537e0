"""An admin's column choices, remembered per tenant (the ``column_choices`` table).

When an admin says what a column means (``--map "Given=first_name"``,
``?mapping={"Notes": null}``), the import remembers it for the tenant, and the
next file with the same header (compared by :func:`core.intake.mapping.header_key`)
gets the same choice without being asked. The choices given with a file win
over remembered ones; a remembered choice of a header the file does not have,
or of a field the file's own choices already take, is simply not applied.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from core.columns import COLUMNS_BY_NAME
from core.intake.mapping import ColumnMapping, header_key, map_header, shown_headers
from core.intake.queries import QUERIES

SELECT_COLUMN_CHOICES = QUERIES["select_column_choices"]
UPSERT_COLUMN_CHOICES = QUERIES["upsert_column_choices"]

Choices = dict[str, str | None]


async def remembered_choices(conn: asyncpg.Connection, tenant: str, header: list[str]) -> Choices:
    """The tenant's remembered choices for the headers of this file, keyed by the header as in
    the file, in the file's order. A field the vocabulary no longer has is left out."""
    shown = shown_headers(header)
    keys = list(dict.fromkeys(header_key(text) for text in shown))
    rows = await conn.fetch(SELECT_COLUMN_CHOICES, tenant, keys)
    found = {r["header_key"]: r["field"] for r in rows if r["field"] is None or r["field"] in COLUMNS_BY_NAME}
    choices: Choices = {}
    for text in shown:
        if header_key(text) in found:
            choices.setdefault(text, found[header_key(text)])
    return choices


async def remember_choices(conn: asyncpg.Connection, tenant: str, choices: Mapping[str, str | None]) -> None:
    """Remember ``choices`` (header → field, None: ignore) for ``tenant``, replacing earlier ones."""
    # One row per key: a statement may not update the same row twice.
    by_key = {header_key(header): (field, header) for header, field in choices.items()}
    if not by_key:
        return
    await conn.execute(
        UPSERT_COLUMN_CHOICES,
        tenant,
        list(by_key),
        [field for field, _ in by_key.values()],
        [header for _, header in by_key.values()],
    )


def overlay_choices(
    remembered: Mapping[str, str | None], explicit: Mapping[str, str | None]
) -> tuple[Choices, list[str]]:
    """The choices to map with: ``explicit`` ones, and each remembered one for a header they
    do not name and a field they do not take; and the headers whose choice came from memory."""
    named = {header_key(header) for header in explicit}
    taken = {field for field in explicit.values() if field is not None}
    effective: Choices = dict(explicit)
    from_memory: list[str] = []
    for header, field in remembered.items():
        if header_key(header) in named or field in taken:
            continue
        if field is not None:
            taken.add(field)
        effective[header] = field
        from_memory.append(header)
    return effective, from_memory


async def map_with_choices(
    conn: asyncpg.Connection, tenant: str, header: list[str], explicit: Mapping[str, str | None] | None
) -> tuple[ColumnMapping, list[str]]:
    """Map ``header`` with the tenant's remembered choices overlaid by ``explicit`` ones;
    return the mapping and the headers whose choice came from memory."""
    remembered = await remembered_choices(conn, tenant, header)
    effective, from_memory = overlay_choices(remembered, explicit or {})
    return map_header(header, effective), from_memory
