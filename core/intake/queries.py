"""The intake's named statements (``core/intake/sql/*.sql``: intake, review, choices)."""

from __future__ import annotations

from core.db import load_queries

QUERIES = load_queries("core.intake")
