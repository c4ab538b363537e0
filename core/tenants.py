"""A tenant's record: created on its first import or token, named and placed by an operator."""

from __future__ import annotations

import asyncpg

from core.db import QUERIES
from core.vocabulary import DEFAULT_MATCH_KEY, MatchKey

ENSURE_TENANT = QUERIES["ensure_tenant"]
REMEMBER_MATCH_KEY = QUERIES["remember_match_key"]
GET_TENANT = QUERIES["get_tenant"]
UPSERT_TENANT = QUERIES["upsert_tenant"]


async def ensure_tenant(conn: asyncpg.Connection, tenant: str) -> None:
    """Create the tenant, named after its id, unless it exists."""
    await conn.execute(ENSURE_TENANT, tenant)


async def find_tenant(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> asyncpg.Record | None:
    """The tenant's id, name, timezone, default language and remembered match key (or NULL);
    None when it does not exist."""
    row: asyncpg.Record | None = await conn.fetchrow(GET_TENANT, tenant)
    return row


async def tenant_timezone(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> str:
    """The tenant's IANA timezone (``UTC`` for a tenant not yet created)."""
    row = await find_tenant(conn, tenant)
    return str(row["timezone"]) if row else "UTC"


async def tenant_match_key(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> MatchKey:
    """How the tenant's imports find people unless told: the key its last import was given,
    else by e-mail."""
    row = await find_tenant(conn, tenant)
    return MatchKey(row["match_by"]) if row and row["match_by"] else DEFAULT_MATCH_KEY


async def remember_match_key(conn: asyncpg.Connection, tenant: str, match_by: MatchKey) -> None:
    """Remember ``match_by`` for the tenant's later imports (the tenant must exist)."""
    await conn.execute(REMEMBER_MATCH_KEY, tenant, match_by)


async def set_tenant(
    conn: asyncpg.Connection, tenant: str, name: str | None, timezone: str | None, language: str | None
) -> asyncpg.Record:
    """Create or change a tenant (None leaves a value as it is); return its record."""
    row: asyncpg.Record = await conn.fetchrow(UPSERT_TENANT, tenant, name, timezone, language)
    return row
