"""The producer side: from an admin's CSV to recorded rows and row messages.

The folder tells which process runs a module:

- top level, shared by the command line and the web process:
  ``submit`` (record an import in PostgreSQL, then send one message per row;
  :func:`submit_import` is the Python entry point for other services),
  ``mapping`` (header → fields, an admin's column choices first), ``choices``
  (those choices, remembered per tenant), ``validation`` (one row → a clean row or
  reasons; ``languages`` and ``webmail`` hold its language table and its
  webmail typo finder), ``fields`` (the template's columns, a view of
  ``core.vocabulary``), ``reports`` (status, failed
  rows, export), ``control`` (cancel, resume, send invites, tenants),
  ``webhooks`` (deliveries as operators see them, redeliver, the events feed),
  ``timezones`` (``send_at`` in a tenant's timezone), ``progress`` (``run
  --wait``'s bar), ``template`` (the CSV template), ``queries`` (the named SQL
  of ``sql/``: intake, reports, review, web, choices, admin, webhooks).
- ``reading/``: decoding, CSV dialect and the streamed :class:`CsvSource`.
- ``review/``: the review of a file before importing it, and its terminal report.
- ``cli/``: the ``bulk-import`` command (``producer.cli:main``), one module
  per family of commands, each loaded only when used.
- ``web/``: the HTTP API and the operators' dashboard (uvicorn's process).
- ``demo/``: ``bulk-import demo``, its generated files and embedded services.
"""

from __future__ import annotations

from producer.submit import submit_import

__all__ = ["submit_import"]
