"""The ASGI app: :func:`create_app` (routes, error handlers, the pool's lifespan) and
:func:`app_from_env`, the Procfile's ``web:`` factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pika.exceptions
import redis
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Mount

from core.db import create_pool
from core.errors import BulkImportError
from core.logs import configure_logging, render_library_loggers
from core.queues import open_reader
from core.settings import Settings, get_settings
from producer.web import admin, dashboard, sources_api, webhooks_api, webhooks_pages
from producer.web.api import ROUTES
from producer.web.errors import (
    ApiError,
    on_api_error,
    on_bulk_import_error,
    on_disconnect,
    on_http_exception,
    on_unexpected,
    on_unreachable,
)
from producer.web.operators import NotAnOperator
from producer.web.scim import scim_app

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app; its asyncpg pool is opened at startup and closed at shutdown."""
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings.database_url, settings.db_pool_size)
        # The dashboard's and /metrics' reads of the broker's queues.
        app.state.broker_reader = open_reader(settings)
        log.info("api.started")
        try:
            yield
        finally:
            await app.state.broker_reader.aclose()
            await app.state.pool.close()

    app = Starlette(
        routes=[
            *ROUTES,
            *webhooks_api.ROUTES,
            *sources_api.ROUTES,
            *admin.ROUTES,
            *dashboard.ROUTES,
            *webhooks_pages.ROUTES,
        ],
        lifespan=lifespan,
        exception_handlers={
            **admin.EXCEPTION_HANDLERS,
            ApiError: on_api_error,
            NotAnOperator: dashboard.on_not_an_operator,
            BulkImportError: on_bulk_import_error,
            HTTPException: on_http_exception,
            ClientDisconnect: on_disconnect,
            OSError: on_unreachable,
            asyncpg.PostgresConnectionError: on_unreachable,
            redis.exceptions.ConnectionError: on_unreachable,
            pika.exceptions.AMQPConnectionError: on_unreachable,
            Exception: on_unexpected,
        },
    )
    app.state.settings = settings
    # Its own app, so that whatever it answers (a 404, a 405) is a SCIM error object.
    app.router.routes.append(Mount("/scim/v2", app=scim_app(app.state)))
    return app


def app_from_env() -> Starlette:
    """The Procfile's ``web:`` factory: settings from the environment, logging configured."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    # uvicorn configured its loggers with handlers of its own before it called
    # this factory; route them through structlog instead.
    render_library_loggers("uvicorn", "uvicorn.error", "uvicorn.access")
    return create_app(settings)
