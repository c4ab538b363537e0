"""The sources' named statements (``core/sources/sql/*.sql``)."""

from __future__ import annotations

from core.db import load_queries

QUERIES = load_queries("core.sources")
