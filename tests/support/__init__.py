"""Helpers shared by the test suite, imported by test modules and by
``tests/conftest.py`` (which holds only fixtures and is never imported).

- ``environment``: the environment every process of the test run reads
  (DATABASE_URL, REDIS_URL, REDIS_NAMESPACE, SMTP_URL and its port, the fast
  backoff and housekeeping settings), set at import; and the constants it is
  built from: ``SERVER_URL``, ``TEST_DATABASE``, ``TEST_DATABASE_URL``,
  ``TEST_REDIS_URL``, ``TEST_REDIS_NAMESPACE``, ``SMTP_PORT``.
- ``services``: ``require_service``, ``WorkerProcess`` (the Procfile's worker
  line), ``procfile_command``, ``subprocess_env``, ``MailServer`` (what the
  test SMTP server received), ``wait_until``, ``free_port``, ``ROOT``.
- ``imports``: writing and importing people files the way the CLI does:
  ``person`` (a template row), ``write_csv``, ``submit``, ``run_import``,
  ``wait_final`` and ``export_rows`` (a tenant's export keyed by e-mail).
- ``drills``: the fault drills' isolated worlds (``Drill``: own database,
  Redis namespace, worker and CLI; ``PrivateCluster``, a PostgreSQL the drill
  may restart; ``shared_server_database``) and what must hold after every
  drill (``check_invariants``, ``outcome``, ``received``, the ``wait_*``
  helpers, ``sigkill_group``).
"""
