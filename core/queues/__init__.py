"""The queues: their names, and everything the system asks of the broker that carries them.

- ``ROWS`` carries one message per import row; ``IMPORTS`` the few per-import
  steps (dispatch, finalize, sweep), kept apart so a deep row backlog of one
  tenant never delays another import's completion; ``INVITE_SCHEDULES`` one
  delayed message per invite batch, days ahead if need be, apart from
  ``INVITES`` (one message per e-mail, and their short retry delays):
  dramatiq fetches a queue's delayed messages in the order sent, so a
  days-ahead message there would hold up a two-second retry. ``WEBHOOKS``
  one message per pending webhook delivery (delayed until its next attempt):
  a slow or failing receiver waits there, never ahead of a row or an invite.
  ``SOURCES`` one message per unfinished run of a scheduled source (delayed
  until its next attempt): a fetch that takes minutes, or waits for a server
  to come back, never sits ahead of an import's steps.
- ``install`` / ``current_broker``: the process's broker, built from the
  settings when first needed (or whichever broker a test installed first).
- The operations below (``enqueue_many``, ``held_messages``, ...) are the
  whole of what the project asks of a broker beyond dramatiq's own API. The
  broker is Redis or RabbitMQ, by the scheme of ``BROKER_URL`` (else
  ``REDIS_URL``). The Redis implementation is ``core.queues.redis``; the
  broker itself, which acknowledges in batches, is
  ``core.queues.redis_broker``: the two modules that know Redis keys and
  scripts. The RabbitMQ ones are ``core.queues.rabbitmq`` and
  ``core.queues.rabbitmq_broker``, the only modules that speak AMQP.
  ``core.queues.readers`` holds the web process's reads (``open_reader``);
  ``core.queues.encoding`` encodes messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dramatiq
import dramatiq.broker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries, ShutdownNotifications, TimeLimit
from dramatiq.rate_limits import RateLimiter
from redis.asyncio import Redis as AsyncRedis

from core.queues import rabbitmq, rabbitmq_broker, redis_broker
from core.queues import redis as backend
from core.queues.encoding import OrjsonEncoder
from core.queues.readers import BrokerReader, RabbitmqReader, RedisReader
from core.queues.redis import BrokerProcess, QueueDepth, broker_processes
from core.settings import Settings, get_settings

ROWS = "rows"
IMPORTS = "imports"
INVITE_SCHEDULES = "invite_schedules"
INVITES = "invites"
WEBHOOKS = "webhooks"
SOURCES = "sources"
ALL_QUEUES = (ROWS, IMPORTS, INVITE_SCHEDULES, INVITES, WEBHOOKS, SOURCES)
# The queues whose messages carry an import id as their first argument
# (row_gave_up carries the failed row message, whose first argument is one).
IMPORT_QUEUES = (ROWS, IMPORTS)
# The Redis broker refuses delays of 7 days or more; a message due later
# waits in hops of at most this.
MAX_DELAY_MS = 6 * 24 * 3600 * 1000
# What a broker call raises when the broker fails, and when it does not
# answer: Redis's errors and RabbitMQ's (either may be the broker).
BROKER_ERRORS = backend.ERRORS + rabbitmq.ERRORS
BROKER_UNREACHABLE = backend.UNREACHABLE + rabbitmq.UNREACHABLE
# Beyond this many messages queued, nobody reads them all to look for one
# import's: a backlog that deep is work in progress, not a stall.
SCAN_LIMIT = 200_000


def check_queue(name: str) -> str:
    """Return ``name`` if it is one of the queues, else raise ValueError."""
    if name not in ALL_QUEUES:
        raise ValueError(f"no queue {name!r}: the queues are {', '.join(ALL_QUEUES)}")
    return name


def base_middleware(settings: Settings) -> list[dramatiq.Middleware]:
    """dramatiq's middleware that every broker of the project carries, sender or worker."""
    # A lean stack: each middleware costs every message. Kept: time limits
    # (a stuck statement must not hold a thread for ever), shutdown
    # notifications (a graceful stop interrupts long actors) and retries
    # (whose options the actors declare). Left out: AgeLimit, Callbacks and
    # Pipelines, which no actor uses.
    return [
        TimeLimit(time_limit=settings.actor_time_limit_ms),
        ShutdownNotifications(),
        Retries(max_retries=3),
    ]


def install(settings: Settings, extra_middleware: Sequence[dramatiq.Middleware] = ()) -> dramatiq.Broker:
    """Build the broker the settings describe and make it the process's.

    It carries ``base_middleware`` then ``extra_middleware`` (the worker's).
    Connects to nothing: the Redis client connects on its first call, and
    so does the RabbitMQ broker's connection of each thread.
    """
    dramatiq.set_encoder(OrjsonEncoder())
    build = rabbitmq_broker.build_broker if settings.broker_kind == "rabbitmq" else redis_broker.build_broker
    broker = build(settings, [*base_middleware(settings), *extra_middleware])
    dramatiq.set_broker(broker)
    return broker


def current_broker() -> dramatiq.Broker:
    """The process's broker: the one installed (a worker's, a test's stub), else one from the settings.

    A process that only sends (the CLI, the web process) needs no worker
    middleware, so the broker it gets on first use has none.
    """
    installed: dramatiq.Broker | None = dramatiq.broker.global_broker
    return installed if installed is not None else install(get_settings())


def _redis() -> RedisBroker | None:
    broker = current_broker()
    return broker if isinstance(broker, RedisBroker) else None


def _rabbitmq() -> RabbitmqBroker | None:
    broker = current_broker()
    return broker if isinstance(broker, RabbitmqBroker) else None


def broker_keeps_rates() -> bool:
    """Whether ``rate_limiter`` has a broker to keep a shared rate in (Redis does, RabbitMQ not)."""
    return _rabbitmq() is None


def enqueue_many(queue: str, actor_name: str, argument_lists: Iterable[tuple[Any, ...]]) -> None:
    """Send ``actor_name`` one message per argument tuple, in order (blocking; one round trip)."""
    redis_broker = _redis()
    if redis_broker is not None:
        backend.enqueue_many(redis_broker, queue, actor_name, argument_lists)
        return
    amqp_broker = _rabbitmq()
    if amqp_broker is not None:
        rabbitmq.enqueue_many(amqp_broker, queue, actor_name, argument_lists)
        return
    broker = current_broker()  # a test's StubBroker: one at a time
    for args in argument_lists:
        broker.enqueue(
            dramatiq.Message(queue_name=queue, actor_name=actor_name, args=args, kwargs={}, options={})
        )


def unacked_messages(queue: str) -> int:
    """Messages of ``queue`` not yet acknowledged, ready or in a worker's hands (blocking).

    On RabbitMQ, the ready ones only (and its delay queue's): AMQP shows no
    client the messages in other consumers' hands.
    """
    redis_broker = _redis()
    if redis_broker is not None:
        return backend.unacked_messages(redis_broker, queue)
    amqp_broker = _rabbitmq()
    return rabbitmq.held_messages(amqp_broker, queue) if amqp_broker is not None else 0


def held_messages(queue: str) -> int:
    """Messages the broker holds for ``queue``: ready, delayed or in a worker's hands (blocking).

    On RabbitMQ, the ready ones of the queue and of its delay queue.
    """
    redis_broker = _redis()
    if redis_broker is not None:
        return backend.held_messages(redis_broker, queue)
    amqp_broker = _rabbitmq()
    return rabbitmq.held_messages(amqp_broker, queue) if amqp_broker is not None else 0


def _held_ids(queues: Sequence[str]) -> set[int] | None:
    redis_broker = _redis()
    if redis_broker is not None:
        return backend.imports_with_held_messages(redis_broker, queues, SCAN_LIMIT)
    amqp_broker = _rabbitmq()
    if amqp_broker is None:
        return set()
    # RabbitMQ shows no message's body without consuming it: it can only
    # tell that none is waiting (core.queues.rabbitmq.nothing_waiting).
    return set() if rabbitmq.nothing_waiting(amqp_broker, queues) else None


def imports_with_held_messages(queues: Sequence[str] = IMPORT_QUEUES) -> set[int] | None:
    """Ids of the imports the broker holds a message for in ``queues`` (blocking).

    None past ``SCAN_LIMIT`` messages (too many to read); on RabbitMQ, the
    empty set when nothing waits in ``queues``, else None
    (``core.queues.rabbitmq.nothing_waiting`` says why).
    """
    return _held_ids(queues)


def deliveries_with_held_messages() -> set[int] | None:
    """Ids of the webhook deliveries the broker holds a message for (blocking; None past ``SCAN_LIMIT``)."""
    # A deliver_webhook message's first argument is its delivery's id.
    return _held_ids((WEBHOOKS,))


def runs_with_held_messages() -> set[int] | None:
    """Ids of the source runs the broker holds a message for (blocking; None past ``SCAN_LIMIT``)."""
    # A run_source message's first argument is its run's id.
    return _held_ids((SOURCES,))


def requeue_prefetched(consumer: dramatiq.Consumer) -> int:
    """Return to the queue what a stopping consumer fetched and never handed out; return how many.

    Only the Redis consumer needs it: RabbitMQ requeues a channel's
    unacknowledged messages when the stopping consumer closes it (0 here).
    """
    return backend.requeue_prefetched(consumer)


def rate_limiter(name: str, per_second: int) -> RateLimiter:
    """A rate shared by every process on the broker (the invite sends')."""
    redis_broker = _redis()
    if redis_broker is None:
        raise RuntimeError("a shared rate needs the Redis broker (elsewhere: core.invites.take_rate_permit)")
    return backend.rate_limiter(redis_broker, name, per_second)


# The web process's reads (a client of its own, not the broker's).


def open_reader(settings: Settings) -> BrokerReader:
    """A reader of the settings' broker for the web process (connects on first use)."""
    if settings.broker_kind == "rabbitmq":
        return RabbitmqReader(settings, ALL_QUEUES, consumers_of=ROWS)
    return RedisReader(settings, ALL_QUEUES)


async def queue_depths(client: AsyncRedis, namespace: str) -> list[QueueDepth]:
    """The depth of every queue, read in one round trip."""
    return await backend.queue_depths(client, namespace, ALL_QUEUES)


async def retry_dead_letters(client: AsyncRedis, namespace: str, queue: str) -> int:
    """Move a queue's dead-lettered messages back onto it; return how many moved."""
    return await backend.retry_dead_letters(client, namespace, check_queue(queue))


__all__ = [
    "ALL_QUEUES",
    "BROKER_ERRORS",
    "BROKER_UNREACHABLE",
    "IMPORTS",
    "IMPORT_QUEUES",
    "INVITES",
    "INVITE_SCHEDULES",
    "MAX_DELAY_MS",
    "ROWS",
    "SCAN_LIMIT",
    "SOURCES",
    "WEBHOOKS",
    "BrokerProcess",
    "BrokerReader",
    "QueueDepth",
    "broker_keeps_rates",
    "broker_processes",
    "check_queue",
    "current_broker",
    "deliveries_with_held_messages",
    "enqueue_many",
    "held_messages",
    "imports_with_held_messages",
    "install",
    "open_reader",
    "queue_depths",
    "rate_limiter",
    "requeue_prefetched",
    "retry_dead_letters",
    "runs_with_held_messages",
    "unacked_messages",
]
