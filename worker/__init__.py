"""The worker process: what ``dramatiq worker.broker worker.actors`` runs, and nothing else.

The rules it applies live in ``core`` (shared with the command line and the
web process, which never import this package); this package only wires them
into dramatiq:

- ``broker``: installs the broker with the worker's middleware.
- ``middleware/``: ``pool`` (the asyncpg pool on dramatiq's event loop),
  ``housekeeping`` (the periodic check for lost work), ``settings`` (retry
  options from the settings), ``stopping`` (one graceful stop per process,
  whatever signals arrive), ``transient`` (tells the gave-up actors whether
  the last error was transient, ``core.errors.is_transient``).
- ``actors``: thin dramatiq actors over ``core``'s plain async functions.
  ``batching``: group commit of the row actors' rows.
"""
