"""The producer's named statements (``producer/sql/*.sql``: admin, reports, undo, web, webhooks).

The core's statements are the core's (``core.db.QUERIES``, ``core.intake.queries.QUERIES``);
the producer reaches those only through the core's functions.
"""

from __future__ import annotations

from core.db import load_queries

QUERIES = load_queries("producer")
