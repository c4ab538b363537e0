"""The API's errors: :class:`ApiError` and the handlers that turn exceptions into JSON answers.

Every error answer is ``{"error": message}`` with a status code: a
``BulkImportError`` by its kind (422, 404, 409, 503, 400), an unreachable
PostgreSQL, Redis or disk 503, anything unexpected 500 (logged, never shown).
The admins' pages get the same message as a page instead (``admin/problem.html``).
"""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.errors import (
    BulkImportError,
    FileRejected,
    ImportNotFound,
    InvalidState,
    ServiceUnavailable,
    SourceNotFound,
    TooLarge,
    WebhookNotFound,
)
from producer.web.pages import page

log = structlog.get_logger(__name__)

_STATUS_OF = (
    (TooLarge, 413),
    (FileRejected, 422),
    (ImportNotFound, 404),
    (WebhookNotFound, 404),
    (SourceNotFound, 404),
    (InvalidState, 409),
    (ServiceUnavailable, 503),
    (BulkImportError, 400),
)


class WebError(BulkImportError):
    """A request the web process answers with ``status`` and ``message`` (and ``headers``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class ApiError(WebError):
    """An API answer other than success, with a message the caller can act on."""


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _for_admins(request: Request) -> bool:
    """A request of the admins' pages that shows HTML (not their JSON or CSV downloads)."""
    path = request.url.path
    return path.startswith("/admin") and not path.endswith((".json", ".csv"))


def _answer(request: Request, status: int, message: str) -> Response:
    if _for_admins(request):
        return page("admin/problem.html", status, message=message)
    return _error(status, message)


async def on_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message, exc.headers)


async def on_bulk_import_error(request: Request, exc: Exception) -> Response:
    status = next(code for kind, code in _STATUS_OF if isinstance(exc, kind))
    return _answer(request, status, str(exc))


async def on_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, str(exc.detail), exc.headers)


async def on_unreachable(request: Request, exc: Exception) -> Response:
    log.error("api.service_unreachable", path=request.url.path, error=repr(exc))
    if _for_admins(request):
        return _answer(request, 503, "The service is unavailable for a moment. Try again in a minute.")
    return _error(503, "a service the API needs (PostgreSQL, Redis or disk) is unavailable: retry later")


async def on_disconnect(_request: Request, _exc: Exception) -> Response:
    return _error(400, "the request body ended before it was complete")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("api.unexpected_error", path=request.url.path, error=repr(exc))
    if _for_admins(request):
        message = "Something went wrong on our side; nothing was changed by it. Try again, or ask for help."
        return _answer(request, 500, message)
    return _error(500, "internal error: the server's log has the details")
