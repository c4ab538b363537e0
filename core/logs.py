"""structlog, configured once per process.

JSON lines when the output is not a terminal (workers, CI), a readable console
renderer on a terminal. Context (tenant, import id, row) is bound with
contextvars by the code that knows it, so every line below carries it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_configured = False
_formatter: logging.Formatter | None = None
_PASSWORD_IN_URL = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def redact(text: str) -> str:
    """Hide the password of any URL in ``text`` (``scheme://user:***@host``)."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


def _redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and "://" in value:
            event_dict[key] = redact(value)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog for this process; later calls change nothing."""
    global _configured, _formatter
    if _configured:
        return
    _configured = True
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (dramatiq, asyncpg) log through the standard library: render
    # their records the same way, on whatever handlers the process has set up
    # (dramatiq's worker processes install theirs before importing our code).
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.processors.format_exc_info],
    )
    _formatter = formatter
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def render_library_loggers(*names: str) -> None:
    """Send the records of the named stdlib loggers through structlog's renderer.

    For libraries that install handlers of their own on their loggers, such as
    uvicorn (``uvicorn.error``, ``uvicorn.access``): their handlers are
    replaced by one stderr handler with our formatter, so their lines come out
    as JSON (or the console format) like every other line of the process.
    """
    if _formatter is None:
        raise RuntimeError("configure_logging() must run first")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter)
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
