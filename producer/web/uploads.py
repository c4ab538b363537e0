"""A CSV or workbook request body, streamed to a temporary file within ``API_MAX_UPLOAD_BYTES``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator

from starlette.requests import Request

from core.errors import TooLarge
from producer.web.context import settings_of


@contextlib.asynccontextmanager
async def uploaded_csv(request: Request) -> AsyncIterator[str]:
    """Stream the body to a temporary file within the size limit; yield its path."""
    settings = settings_of(request)
    limit = settings.api_max_upload_bytes
    too_large = TooLarge(
        f"the body is over the limit of {limit:,} bytes (API_MAX_UPLOAD_BYTES):"
        " split the file, or import it with the command line",
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    fd, path = tempfile.mkstemp(prefix="bulk-import-upload-", suffix=".upload")
    try:
        received = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise too_large
                out.write(chunk)
        yield path
    finally:
        os.unlink(path)
