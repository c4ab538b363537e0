"""A tenant's record: created on its first import or token, named and placed by an operator."""

from __future__ import annotations

import asyncpg

from core.db import QUERIES

ENSURE_TENANT = QUERIES["ensure_tenant"]
GET_TENANT = QUERIES["get_tenant"]
UPSERT_TENANT = QUERIES["upsert_tenant"]


async def ensure_tenant(conn: asyncpg.Connection, tenant: str) -> None:
    """Create the tenant, named after its id, unless it exists."""
    await conn.execute(ENSURE_TENANT, tenant)


async def find_tenant(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> asyncpg.Record | None:
    """The tenant's id, name, timezone and default language; None when it does not exist."""
    row: asyncpg.Record | None = await conn.fetchrow(GET_TENANT, tenant)
    return row


async def tenant_timezone(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> str:
    """The tenant's IANA timezone (``UTC`` for a tenant not yet created)."""
    row = await find_tenant(conn, tenant)
    return str(row["timezone"]) if row else "UTC"


async def set_tenant(
    conn: asyncpg.Connection, tenant: str, name: str | None, timezone: str | None, language: str | None
) -> asyncpg.Record:
    """Create or change a tenant (None leaves a value as it is); return its record."""
    row: asyncpg.Record = await conn.fetchrow(UPSERT_TENANT, tenant, name, timezone, language)
    return row
