"""Review a file before importing it: what matches, what is wrong, what the import would do.

Modules:

- ``review``: :func:`review_file`, the review itself (one rolled-back,
  read-only transaction; the file streamed into a temporary table).
- ``checks``: the capped problem lists (``ProblemLog``) and the cross-row
  checks answered in PostgreSQL: repeated e-mails, e-mail domain typos, team
  spellings, managers.
- ``changes``: what the import would change for each person it updates,
  field by field and their manager (the review JSON's ``changes``, and
  ``rows_preview``'s updates), read set-based from the scratch table.
- ``report``: :func:`render_review`, the terminal report of a review (the
  ``bulk-import review`` command itself is :mod:`producer.cli.review`).
"""

from core.intake.review.review import review_file

__all__ = ["review_file"]
