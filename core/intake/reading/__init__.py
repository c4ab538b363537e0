"""Read the admin's file into rows: a CSV from any spreadsheet program, or the workbook itself.

The review and the import both read the upload through :func:`open_source`,
which tells a workbook (xlsx, xlsm, ods, xls) from a CSV by its content and
returns a :class:`WorkbookSource` or a :class:`CsvSource`: the same interface
(``header``, ``header_row``, ``preamble``, ``blank_rows``, ``rows()``), so the
mapping, validation, review and import do not care which.

For a CSV, :func:`open_csv` looks
at a bounded prefix (:data:`SNIFF_BYTES`) to choose the text encoding, the
delimiter and the header row, then streams the whole file through an incremental
decoder into :mod:`csv`, so memory stays flat however large the file is.

Row numbers are the ones a spreadsheet shows: the header is on ``header_row`` and
the n-th record after it on ``header_row + n``. A line break inside a quoted cell
does not start a new row; blank rows are skipped but still counted.

Anything that makes the whole file unreadable raises
:class:`~core.errors.FileRejected` with one sentence the admin can act on.

A workbook's archive is checked before the reader sees it (ZIP bombs, entity
bombs, oversized sheets, passwords), then one sheet is read whole by
python-calamine and its cells turned into the text the spreadsheet shows.

Modules:

- ``opening``: :func:`open_source`, the format by content, and :data:`Source`.
- ``archive``: the workbook's container checked: format, sizes, extent, password.
- ``workbook``: :class:`WorkbookSource`, :func:`open_workbook`, :func:`cell_text`.
- ``source``: :func:`open_csv`, :class:`CsvSource` (the streaming reader; its
  base :class:`RowSource` is shared with the workbook source),
  :class:`ReadLimits`, :class:`SourceRow`, :data:`SNIFF_BYTES`.
- ``encodings``: the text encoding from the file's prefix, and the rejection of
  files that are not CSV (workbooks, PDFs, archives).
- ``dialect``: the delimiter and the preamble lines above the header.
"""

from core.intake.reading.opening import Source, open_source
from core.intake.reading.source import DEFAULT_LIMITS, SNIFF_BYTES, CsvSource, ReadLimits, SourceRow, open_csv
from core.intake.reading.workbook import WorkbookSource

__all__ = [
    "DEFAULT_LIMITS",
    "SNIFF_BYTES",
    "CsvSource",
    "ReadLimits",
    "Source",
    "SourceRow",
    "WorkbookSource",
    "open_csv",
    "open_source",
]
