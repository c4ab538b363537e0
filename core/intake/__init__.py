"""From a file to a recorded import: reading, mapping, validation, review and recording.

The command line, the web process and the worker (a scheduled source's run)
all take a file in the same way, so these rules live here, once:

- ``reading/``: ``open_source`` (the format told by content); decoding, the
  CSV dialect and the streamed ``CsvSource``; a workbook's archive checked
  first, then ``WorkbookSource``.
- ``mapping``: header → fields, an admin's column choices first;
  ``choices``: those choices, remembered per tenant.
- ``validation``: one row → a clean row or reasons (``languages`` holds its
  language table, ``webmail`` its webmail typo finder).
- ``review/``: what an import of a file would do, changing nothing.
- ``submit``: record an import (COPY, one transaction), then send its rows.
- ``timezones``: a time without an offset read in the tenant's timezone.
- ``queries``: the named statements of ``sql/`` (intake, review, choices).
"""
