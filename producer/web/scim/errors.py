"""SCIM error objects (RFC 7644 §3.12) and the wrapper that turns every failure of a SCIM route into one."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producer.web.scim.schemas import ERROR

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/scim+json"


class ScimError(Exception):
    """An answer of a SCIM route that is an error: its status, detail and ``scimType``."""

    def __init__(
        self, status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}


def error_response(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """The error object, as ``application/scim+json``."""
    body: dict[str, Any] = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


def scim_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A SCIM answer."""
    return JSONResponse(body, status_code=status, headers=headers, media_type=MEDIA_TYPE)


Endpoint = Callable[[Request], Awaitable[Response]]


def scim_endpoint(handler: Endpoint) -> Endpoint:
    """Wrap a route so that whatever it raises is answered as a SCIM error object."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ScimError as exc:
            return error_response(exc.status, exc.detail, exc.scim_type, exc.headers)
        except Exception:  # the SCIM client must get a SCIM error, whatever happened
            log.exception("scim.unexpected", path=request.url.path)
            return error_response(500, "internal error: the operators have the details in the log")

    return wrapped
