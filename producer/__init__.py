"""The producer side: from an admin's CSV to recorded rows and row messages.

- ``reading``: decoding and CSV dialect, streamed. ``mapping``: header → fields.
  ``validation``: one row → a clean row or reasons. ``fields``: the template.
- ``submit``: record an import in PostgreSQL, then send one message per row;
  ``submit_import`` is the Python entry point for other services.
- ``review``: the review (``review_file``); ``review_checks``: its capped
  problem lists and cross-row checks; ``review_report``: the ``bulk-import
  review`` command and its terminal report.
- ``control``: cancel and resume. ``reports``: status, failed rows, export.
- ``api`` (+ ``api_openapi``): the HTTP API; ``tokens``: its bearer tokens;
  ``timezones``: reading ``send_at`` in a tenant's timezone.
- ``cli``: the ``bulk-import`` command; ``progress``: ``run --wait``;
  ``template``: the CSV template; ``demo``: the end-to-end demo.
"""

from __future__ import annotations

from typing import Any


def submit_import(*args: Any, **kwargs: Any) -> int:
    """Start an import; see :func:`producer.submit.submit_import`."""
    from producer.submit import submit_import as _submit

    return _submit(*args, **kwargs)


__all__ = ["submit_import"]
