"""The worker side: what dramatiq runs, and what everything shares.

- ``broker``: the Redis broker and its middleware (asyncpg pool per process).
- ``actors``: the thin dramatiq actors (``upsert_row``, ``finalize_import``,
  ``sweep_missing_people``, ``dispatch_import``, ...).
- ``rows``: upserting one row, idempotently. ``imports``: an import's life
  after its rows are recorded (start, dispatch, finalize, sweep).
- ``db`` + ``queries.sql``: every SQL statement, by name; ``settings``: the
  one settings object; ``logs``: structlog setup; ``errors``: the exception root;
  ``embedded``: throw-away PostgreSQL and Redis for the demo.
"""
