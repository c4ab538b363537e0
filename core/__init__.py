"""The core every process shares: the rules of an import, and what they stand on.

Nothing here is a process of its own. The command line and the web process
(``producer``) and the dramatiq worker (``worker``) all import it; it imports
neither of them.

- ``settings``: the one settings object, read from the environment when first
  needed. ``errors``: the exception root (``BulkImportError``) and which
  errors are transient. ``logs``: structlog setup.
- ``vocabulary``: modes, states, outcomes, invite options and person columns,
  as enums: the one list everything else derives from.
- ``db``: connections, pools and the named statements of ``sql/`` (one file
  per concern: ``imports``, ``rows``, ``invites``, ``housekeeping``, ``undo``,
  ``webhooks``).
- ``queues/``: queue names and everything the system asks of a broker,
  Redis or RabbitMQ by ``BROKER_URL``; ``queues/redis.py`` and
  ``queues/redis_broker.py`` are the only modules that know Redis keys and
  scripts, ``queues/rabbitmq.py`` and ``queues/rabbitmq_broker.py`` the only
  ones that speak AMQP, ``queues/readers.py`` the web process's reads of
  either, ``queues/encoding.py`` the message encoder.
- ``outbox``: every message sent (rows, dispatch, finalize, sweep, invite
  batches, invites, webhook deliveries), by actor name, without importing the
  actors.
- ``imports``: an import's life after its rows are recorded (start, dispatch,
  finalize, sweep, end). ``rows``: applying a batch of rows, idempotently.
  ``recovery``: finding and resuming stalled imports. ``status``: an import's
  status JSON.
- ``invites`` + ``mail``: invitations, claimed and sent once in effect.
- ``undo`` + ``undo_plan``: undoing an import, its batches and its read-only
  preview.
- ``webhooks/``: events recorded with each state change, endpoints,
  deliveries, signing and the receiver's address checks.
"""
