"""Times given without an offset are read in the tenant's timezone.

Shared by the command line (``--send-at``) and the HTTP API (``send_at``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from core.errors import BulkImportError
from producer.queries import QUERIES


def parse_send_at(value: str | None, tenant_tz: str, *, name: str = "--send-at") -> datetime | None:
    """Parse an ISO 8601 time; a naive one is taken to be in ``tenant_tz``.

    ``name`` is how the caller spells the option, for the error message.
    """
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BulkImportError(
            f"{name} {value!r} is not an ISO 8601 time, e.g. 2026-12-01T09:00+01:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tenant_tz))


async def tenant_timezone(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> str:
    """The tenant's IANA timezone (``UTC`` for a tenant not yet created)."""
    row = await conn.fetchrow(QUERIES["get_tenant"], tenant)
    return str(row["timezone"]) if row else "UTC"
