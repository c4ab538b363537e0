"""The producer's named statements (``producer/sql/*.sql``: intake, reports, review, web, choices).

The worker's statements are the worker's (``core.db.QUERIES``); the producer
reaches those only through the worker's functions.
"""

from __future__ import annotations

from core.db import load_queries

QUERIES: dict[str, str] = load_queries("producer")
