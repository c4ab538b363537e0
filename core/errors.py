"""The project's one exception root and its family, and which errors are transient.

Messages are written for the person who must act on them: they name the row,
the column and the fix. The CLI prints ``str(error)`` on one line and exits
with ``error.exit_code``.

``is_transient`` is the one classification of errors that are nobody's
fault and pass by themselves (a database restarting, a lost connection, a
deadlock): the actors retry them and, past their retries, leave the work
pending for the stalled-import recovery instead of recording it as failed.
"""

from __future__ import annotations

import asyncpg


class BulkImportError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1
    # True for the errors that the same work can get past later, unchanged.
    transient = False


class FileRejected(BulkImportError):
    """The file as a whole cannot be imported (unreadable, no usable header, too big)."""

    exit_code = 2


class TooLarge(BulkImportError):
    """Over a size limit (an upload, a fetched file); over HTTP, 413."""


class ImportNotFound(BulkImportError):
    """No import has the given id (for the caller's tenant)."""


class InvalidState(BulkImportError):
    """The import is not in a state that allows the requested action."""


class ServiceUnavailable(BulkImportError):
    """PostgreSQL or Redis did not answer; the same request can succeed later."""

    transient = True


class ConfigurationError(BulkImportError):
    """A setting is missing or malformed."""


class WebhookNotFound(BulkImportError):
    """No webhook endpoint or delivery has the given id (for the caller's tenant)."""


class AddressRefused(BulkImportError):
    """An address the system will not connect to (a private or loopback one; ``core.addresses``)."""


class WebhookRefused(AddressRefused):
    """A webhook URL the system will not call (not https, or a private address)."""


class SourceRefused(AddressRefused):
    """A source the system will not fetch from (its URL's form, a private address, an unpinned key)."""


class SourceNotFound(BulkImportError):
    """No source or source run has the given id (for the caller's tenant)."""


# Whole SQLSTATE classes, as asyncpg maps them: 08 connection exceptions
# (lost, refused by the server), 40 transaction rollback (serialization
# failure, deadlock), 53 insufficient resources (too many connections, disk
# full, out of memory), and 57P01-57P03 (admin or crash shutdown, cannot
# connect now: the server is stopping or starting) and 57014 (a statement
# cancelled, by statement_timeout or an operator). Plus OSError: a refused or
# reset socket and timeouts (TimeoutError is an OSError).
TRANSIENT_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.TransactionRollbackError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    # Seen when the server's termination notice (a shutdown, or
    # pg_terminate_backend) reaches an idle pooled connection before its
    # socket closes: the next query is refused with "cannot switch to state
    # 15; another operation (2) is in progress". Never about the data.
    asyncpg.InternalClientError,
    OSError,
)

# asyncpg raises a bare InterfaceError when a connection or the pool is used
# after it closed (as happens to the pool's connections when the server goes
# away); its other InterfaceErrors (DataError among them) are the caller's.
_CLOSED_INTERFACE_MESSAGES = ("connection is closed", "pool is closing", "pool is closed")


def is_transient(error: BaseException) -> bool:
    """True when ``error`` is no fault of the work at hand and the same work can succeed later."""
    if isinstance(error, BulkImportError):
        return error.transient
    if isinstance(error, TRANSIENT_DATABASE_ERRORS):
        return True
    if type(error) is asyncpg.InterfaceError:
        return any(text in str(error) for text in _CLOSED_INTERFACE_MESSAGES)
    return False
