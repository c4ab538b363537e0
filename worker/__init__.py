"""The worker side: what dramatiq runs, and the core every process shares.

The shared core (no process of its own; the producer uses it too):

- ``settings``: the one settings object, read from the environment when first
  needed. ``errors``: the exception root, and which errors are transient.
  ``logs``: structlog setup.
- ``vocabulary``: modes, states, outcomes, invite options and person columns:
  the one list everything else derives from.
- ``db``: connections, pools and the named statements of ``sql/`` (one file
  per concern: ``imports``, ``rows``, ``invites``, ``housekeeping``, ``webhooks``).
- ``queues/``: queue names and what the system asks of a broker;
  ``queues/redis.py`` is the only module that knows Redis keys and scripts,
  ``queues/encoding.py`` the message encoder.
- ``outbox``: every message sent (rows, dispatch, finalize, sweep, invite
  batches, invites, webhook deliveries), by actor name, without importing the actors.
- ``imports``: an import's life after its rows are recorded (start, dispatch,
  finalize, sweep, end). ``rows``: applying a batch of rows, idempotently.
  ``invites`` + ``mail``: invitations, claimed and sent once in effect.
  ``recovery``: finding and resuming stalled imports.
- ``status``: an import's status JSON. ``events``: the webhook events,
  recorded in the transaction of the state change they report (an outbox).
  ``endpoints``: a tenant's webhook endpoints. ``deliveries``: one attempt
  and the retry schedule; ``signing`` (Standard Webhooks) and
  ``webhook_http`` (the receiver's address checked, the signed POST).

The worker process only (``dramatiq worker.broker worker.actors``):

- ``broker``: installs the broker with the worker's middleware.
- ``middleware/``: ``pool`` (the asyncpg pool on dramatiq's event loop),
  ``housekeeping`` (the periodic check for lost work), ``settings`` (retry
  options from the settings), ``stopping`` (one graceful stop per process,
  whatever signals arrive), ``transient`` (tells the gave-up actors whether
  the last error was transient, ``errors.is_transient``).
- ``actors``: thin dramatiq actors over the plain functions above.
  ``batching``: group commit of the row actors' rows.
"""
