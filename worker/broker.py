"""The worker's broker: the module the Procfile's worker line names first.

``dramatiq worker.broker worker.actors`` imports this module, which installs
the broker the settings describe with the worker's middleware (connecting to
nothing yet), then the actors, which declare themselves on it. Nothing else
imports this module: a process that only sends gets a plain broker from
``core.queues.current_broker``.

The worker's middleware, after ``core.queues.base_middleware``:
``GracefulStop`` (one graceful stop per process whatever signals arrive,
ended by force when it overruns; first, so its "after" hooks run last and
it sees the stop complete), ``CurrentMessage`` (the row actor leaves its
row's future under its message's id: ``core.queues.deferred``), ``AsyncIO``
(async actors share one event loop thread per worker process), then
``DatabasePool`` (the asyncpg pool on that loop: "before" hooks run in order,
so the loop exists, and "after" hooks in reverse, so it still turns while the
pool closes), ``Housekeeping`` (the periodic check for lost work),
``ActorSettings`` (retry limits from the settings) and ``TransientErrors``
(after ``Retries``, so that its "after" hook runs first and tells the
gave-up actors whether the last error was transient).
"""

from __future__ import annotations

import dramatiq
from dramatiq import MessageProxy
from dramatiq.middleware import AsyncIO, CurrentMessage, Middleware, Retries

from core import queues
from core.logs import configure_logging
from core.queues import deferred
from core.settings import Settings, get_settings
from worker.middleware.housekeeping import Housekeeping
from worker.middleware.pool import DatabasePool
from worker.middleware.settings import ActorSettings
from worker.middleware.stopping import GracefulStop
from worker.middleware.transient import TransientErrors


def worker_middleware(settings: Settings) -> list[Middleware]:
    """The worker's own middleware, in order."""
    return [
        GracefulStop(settings),
        CurrentMessage(),
        AsyncIO(),
        DatabasePool(settings),
        Housekeeping(settings),
        ActorSettings(settings),
        TransientErrors(),
    ]


def build_broker(settings: Settings) -> dramatiq.Broker:
    """Install the broker with the worker's middleware as the process's broker."""
    configure_logging(settings.log_level, settings.log_format)
    installed = queues.install(settings, worker_middleware(settings))
    deferred.set_failure_hook(lambda message, failure: after_failure(installed, message, failure))
    return installed


def after_failure(broker: dramatiq.Broker, message: MessageProxy, failure: BaseException) -> None:
    """What dramatiq's worker does with an actor's exception, for a row whose batch failed
    after its actor returned (core.queues.deferred): the "after" hooks that handle
    failures, in dramatiq's order (reversed), so the message is re-sent with its backoff
    or given up (``Retries``) knowing whether the error was transient (``TransientErrors``)."""
    for middleware in reversed(broker.middleware):
        if isinstance(middleware, (Retries, TransientErrors)):
            middleware.after_process_message(broker, message, exception=failure)


broker = build_broker(get_settings())
