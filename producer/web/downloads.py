"""The files the web process hands out, for the API and the admins' pages alike: the
template, and an import's rejected and failed rows."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from typing import IO, Any, TextIO, cast

from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from producer.reports import write_failed_rows
from producer.template import write_template

_CHUNK = 64 * 1024


def template_csv(*, example: bool) -> Response:
    """The CSV template (with ``example``, a few filled-in rows) as a download."""
    out = io.StringIO()
    write_template(out, example=example)
    name = "people-example.csv" if example else "people-template.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def failed_rows_csv(pool: Any, import_id: int, filename: str) -> Response:
    """The import's rejected and failed rows (``Row``, its own columns, ``Reason``) as a download.

    Spooled: a long list goes to disk, not memory, before it is streamed out.
    """
    spool: IO[str] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed after the response
        max_size=1024 * 1024, mode="w+", newline="", encoding="utf-8"
    )
    try:
        async with pool.acquire() as conn:
            await write_failed_rows(conn, import_id, cast(TextIO, spool))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> Iterator[str]:
        while chunk := spool.read(_CHUNK):
            yield chunk

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        background=BackgroundTask(spool.close),
    )
