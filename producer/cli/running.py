"""How a command ends: the one place an expected failure becomes one line and an exit code.

Every expected failure is a ``BulkImportError`` (or an unreachable service)
and ends as one line on stderr with a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import asyncpg
import click

from core.errors import BulkImportError
from core.logs import redact
from core.queues import BROKER_UNREACHABLE
from core.settings import get_settings

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning expected failures into one line and an exit code."""
    settings = get_settings()
    try:
        return asyncio.run(coro)
    except BulkImportError as exc:
        fail(str(exc), exc.exit_code)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        # Local files (-o FILE): checked before the broader OSError below,
        # which means the database could not be reached.
        fail(f"cannot use {exc.filename}: {exc.strerror}", 1)
    except asyncpg.UndefinedTableError:
        fail("the database has no schema yet: run `bulk-import migrate` first", 1)
    except asyncpg.InvalidCatalogNameError:
        fail(
            f"the database in DATABASE_URL ({redact(settings.database_url)}) does not exist:"
            " run `bulk-import migrate` to create it",
            1,
        )
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        fail(f"cannot reach PostgreSQL at {redact(settings.database_url)}: {exc}", 1)
    except BROKER_UNREACHABLE as exc:
        name = "RabbitMQ" if settings.broker_kind == "rabbitmq" else "Redis"
        fail(f"cannot reach {name} at {redact(settings.broker_address)}: {exc}", 1)


def fail(message: str, code: int) -> NoReturn:
    """End the command with ``error: message`` on stderr and exit code ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def async_command(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Turn an ``async def`` into a click callback run by :func:`run_async`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_async(fn(*args, **kwargs))

    return wrapper


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``data`` as indented JSON, or as ``text(data)``."""
    click.echo(json.dumps(data, indent=2) if as_json else text(data))
