"""Open whatever the admin sent, by its content: :func:`open_source`.

A ZIP holding ``xl/workbook.xml`` is an Excel workbook (xlsx, or xlsm whose
macros are ignored), a ZIP whose ``mimetype`` is OpenDocument's spreadsheet is
an ods, an OLE2 file is a legacy xls (or a password-protected file, refused);
anything else is read as CSV. The file's name and Content-Type play no part,
so a workbook renamed ``.csv`` is read as the workbook it is.
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO

from core.errors import FileRejected
from core.intake.reading.archive import check_ole2, check_zip, workbook_kind
from core.intake.reading.encodings import too_big
from core.intake.reading.source import DEFAULT_LIMITS, CsvSource, ReadLimits, open_csv
from core.intake.reading.workbook import WorkbookSource, open_workbook

__all__ = ["Source", "open_source"]

Source = CsvSource | WorkbookSource
_MAGIC_BYTES = 8
_COPY_CHUNK = 1024 * 1024


def open_source(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    limits: ReadLimits = DEFAULT_LIMITS,
    sheet: str | None = None,
) -> Source:
    """Open a CSV file or a workbook (a path or a binary stream) and read up to its header.

    ``sheet`` chooses a workbook's sheet by name (default: the first with a
    header we can match); naming one for a CSV is an error. Raises
    :class:`FileRejected` when the file cannot be read at all. A stream is read
    from its current position and is left open.
    """
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as stream:
                kind = workbook_kind(stream.read(_MAGIC_BYTES))
                if kind is not None:
                    stream.seek(0)
                    return _open_workbook(stream, kind, limits, sheet)
        except OSError as error:
            raise FileRejected(f"cannot read {os.fspath(source)}: {error.strerror or error}") from error
        return _open_csv(source, limits, sheet)
    kind = workbook_kind(_peek(source))
    if kind is None:
        return _open_csv(source, limits, sheet)
    if source.seekable():
        return _open_workbook(source, kind, limits, sheet)
    # A pipe: the ZIP directory is at the end, so the workbook is spooled to disk first.
    with tempfile.TemporaryFile(prefix="bulk-import-workbook-") as spooled:
        copied = 0
        while chunk := source.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > limits.max_file_bytes:
                raise FileRejected(too_big(limits.max_file_bytes))
            spooled.write(chunk)
        spooled.seek(0)
        return _open_workbook(spooled, kind, limits, sheet)


def _open_csv(source: str | os.PathLike[str] | BinaryIO, limits: ReadLimits, sheet: str | None) -> CsvSource:
    if sheet is not None:
        raise FileRejected(f"sheet {sheet!r} was asked for, but the file is a CSV, which has no sheets")
    return open_csv(source, limits=limits)


def _open_workbook(stream: BinaryIO, kind: str, limits: ReadLimits, sheet: str | None) -> Source:
    start = stream.seek(0, os.SEEK_CUR)
    size = stream.seek(0, os.SEEK_END) - start
    stream.seek(start)
    if size > limits.max_file_bytes:
        raise FileRejected(too_big(limits.max_file_bytes))
    fmt = check_zip(stream, limits) if kind == "zip" else check_ole2(stream, limits)
    if fmt is None:  # a ZIP that is no workbook: the CSV reader says what it is
        stream.seek(start)
        return _open_csv(stream, limits, sheet)
    stream.seek(start)
    return open_workbook(stream, fmt, limits=limits, sheet=sheet)


def _peek(stream: BinaryIO) -> bytes:
    """The first bytes of the stream, leaving its position where it was."""
    if stream.seekable():
        here = stream.tell()
        head = stream.read(_MAGIC_BYTES)
        stream.seek(here)
        return head
    peek = getattr(stream, "peek", None)
    return peek(_MAGIC_BYTES)[:_MAGIC_BYTES] if peek is not None else b""
