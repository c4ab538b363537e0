"""The project's one exception root and its family.

Messages are written for the person who must act on them: they name the row,
the column and the fix. The CLI prints ``str(error)`` on one line and exits
with ``error.exit_code``.
"""

from __future__ import annotations


class BulkImportError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1


class FileRejected(BulkImportError):
    """The file as a whole cannot be imported (unreadable, no usable header, too big)."""

    exit_code = 2


class ImportNotFound(BulkImportError):
    """No import has the given id (for the caller's tenant)."""


class InvalidState(BulkImportError):
    """The import is not in a state that allows the requested action."""


class ServiceUnavailable(BulkImportError):
    """PostgreSQL or Redis did not answer; the same request can succeed later."""


class ConfigurationError(BulkImportError):
    """A setting is missing or malformed."""
