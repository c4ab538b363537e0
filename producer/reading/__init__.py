"""Stream a CSV file into rows, whichever spreadsheet program wrote it.

The review and the import both read the upload through :func:`open_csv`. It looks
at a bounded prefix (:data:`SNIFF_BYTES`) to choose the text encoding, the
delimiter and the header row, then streams the whole file through an incremental
decoder into :mod:`csv`, so memory stays flat however large the file is.

Row numbers are the ones a spreadsheet shows: the header is on ``header_row`` and
the n-th record after it on ``header_row + n``. A line break inside a quoted cell
does not start a new row; blank rows are skipped but still counted.

Anything that makes the whole file unreadable raises
:class:`~worker.errors.FileRejected` with one sentence the admin can act on.

Modules:

- ``source``: :func:`open_csv`, :class:`CsvSource` (the streaming reader),
  :class:`ReadLimits`, :class:`SourceRow`, :data:`SNIFF_BYTES`.
- ``encodings``: the text encoding from the file's prefix, and the rejection of
  files that are not CSV (workbooks, PDFs, archives).
- ``dialect``: the delimiter and the preamble lines above the header.
"""

from producer.reading.source import DEFAULT_LIMITS, SNIFF_BYTES, CsvSource, ReadLimits, SourceRow, open_csv

__all__ = ["DEFAULT_LIMITS", "SNIFF_BYTES", "CsvSource", "ReadLimits", "SourceRow", "open_csv"]
