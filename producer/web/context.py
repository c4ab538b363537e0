"""What a request of the web process reaches: the app's settings and its asyncpg pool.

Both are made once at startup (``producer.web.app``) and kept on the app's
state; every route takes them through these two functions.
"""

from __future__ import annotations

import asyncpg
from starlette.requests import Request

from core.settings import Settings


def settings_of(request: Request) -> Settings:
    """The web process's settings."""
    settings: Settings = request.app.state.settings
    return settings


def pool_of(request: Request) -> asyncpg.Pool:
    """The web process's connection pool."""
    pool: asyncpg.Pool = request.app.state.pool
    return pool
