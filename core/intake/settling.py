"""Writing a file's rows: each row once, its status decided as it is written.

The recording (``core.intake.submit``) writes the validated rows into
``import_rows`` in chunks of ``CHUNK_ROWS``, one ``record_rows`` statement
each (core/intake/sql/intake.sql), pipelined: while one chunk's statement
runs on the connection, the next chunk is read and validated here. In upsert
and sync the statement compares each pending row with its stored person
(one index probe per row, in the recording's transaction) and writes the
rows that would change nothing as ``unchanged``, with their person and the
version compared with (``core.imports`` checks it again before finalizing):
they never become messages. The comparison runs in PostgreSQL while Python
validates the next chunk, so on two cores it costs the recording next to
nothing; before, a COPY of every row as pending and then an ``UPDATE`` of
the unchanged ones wrote each row twice, the second time after the file was
read (about 28 µs a row at 100,000 rows, more at a million).

A row whose address is a later row's previous one cannot be known chunk by
chunk: those few are sent back to pending once the file is in
(``unsettle_renamed_rows``), and a repeated row the recording rejects has its
settlement cleared (``reject_duplicate_*``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import asyncpg
import orjson

from core.intake.queries import QUERIES

RECORD_ROWS = QUERIES["record_rows"]

# Rows per statement: large enough that a round trip is nothing per row,
# small enough that two chunks in memory (one being written, one being read)
# stay a few megabytes whatever the file's size.
CHUNK_ROWS = 2_000
# While a chunk is written, the event loop is given a turn this often, so that
# the statement's message goes out while the next chunk is validated.
YIELD_EVERY = 100

ROW_FIELDS = ("row_number", "email", "data", "raw", "status", "errors", "employee_id", "previous_email")
"""A record's fields, in the order of record_rows' arrays."""
# The documents (data, raw, errors) travel as JSON text: in a jsonb[] parameter
# a document that is a list (raw, errors) would be taken for a dimension.
_DOCUMENTS = frozenset(ROW_FIELDS.index(name) for name in ("data", "raw", "errors"))


def _column(index: int, values: tuple[Any, ...]) -> list[Any]:
    if index in _DOCUMENTS:
        return [None if v is None else orjson.dumps(v).decode() for v in values]
    return list(values)


async def write_rows(
    conn: asyncpg.Connection,
    records: Iterable[tuple[Any, ...]],
    *,
    import_id: int,
    tenant: str,
    settle: bool,
    keep_blank_cells: bool,
) -> int:
    """Write ``records`` (of ``ROW_FIELDS``) as import ``import_id``'s rows; return how many.

    ``settle``: write the rows that change nothing of their stored person as
    unchanged (upsert and sync); ``keep_blank_cells``: the import's blank cells
    keep the stored value.
    """
    written = 0
    writing: asyncio.Future[str] | None = None

    async def flush(chunk: list[tuple[Any, ...]]) -> None:
        nonlocal written, writing
        if writing is not None:  # one statement at a time on the connection
            written += int((await writing).split()[-1])
        columns = [_column(i, column) for i, column in enumerate(zip(*chunk, strict=True))]
        writing = asyncio.ensure_future(
            conn.execute(RECORD_ROWS, import_id, tenant, keep_blank_cells, settle, *columns)
        )

    chunk: list[tuple[Any, ...]] = []
    try:
        for count, record in enumerate(records, start=1):
            chunk.append(record)
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if len(chunk) == CHUNK_ROWS:
                await flush(chunk)
                chunk = []
        if chunk:
            await flush(chunk)
    finally:
        if writing is not None:
            # Also when reading the file failed: the statement in flight ends before
            # the transaction rolls back (its error, if any, is the one raised).
            written += int((await writing).split()[-1])
            writing = None
    return written
