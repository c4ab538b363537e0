"""Everything the system asks of the broker beyond dramatiq's API, on RabbitMQ (AMQP 0-9-1).

The counterpart of ``core.queues.redis``; ``core.queues`` picks one by the
broker the process runs. What AMQP lets a client see differs from Redis:

- A queue's **ready** messages (``queue.declare`` passive: ``message_count``)
  and its **consumers** are visible; messages **in a consumer's hands**
  (prefetched or being worked on, unacknowledged) are not, nor is any
  message's body without consuming it. So ``held_messages`` counts a
  queue's ready messages and its delay queue's, the dashboard's
  "in progress" is 0, and ``imports_with_held_messages`` can only say
  "none" when nothing waits in those queues (``nothing_waiting``), else
  None ("cannot tell"), which the stall scan takes as "not stalled".
- The **worker processes** are the consumers of the row queue (each worker
  process consumes every queue once).
- **Dead letters** sit in ``<queue>.XQ``; ``retry_dead_letters`` moves them
  back, publish and acknowledge in one AMQP transaction per batch, so a
  message is never in both queues or in neither.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import dramatiq
import dramatiq.errors
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import dq_name, xq_name

from core.queues.redis import BrokerProcess, QueueDepth

_BATCH = 1_000  # messages per AMQP transaction
_ATTEMPTS = 3  # tries of a batch whose connection failed
_PERSISTENT = pika.BasicProperties(delivery_mode=2)
_T = TypeVar("_T")
# What a send raises when RabbitMQ fails, and when it does not answer
# (dramatiq's ConnectionClosed, once its own retries of a send ran out).
ERRORS: tuple[type[Exception], ...] = (pika.exceptions.AMQPError, dramatiq.errors.BrokerConnectionError)
UNREACHABLE: tuple[type[Exception], ...] = (
    pika.exceptions.AMQPConnectionError,
    dramatiq.errors.BrokerConnectionError,
)
_tx_channels = threading.local()


def _tx_channel(broker: RabbitmqBroker) -> Any:
    """This thread's transactional channel on the broker's connection of this thread."""
    channel = getattr(_tx_channels, "channel", None)
    if channel is None or not channel.is_open or channel.connection is not broker.connection:
        channel = broker.connection.channel()
        channel.tx_select()
        _tx_channels.channel = channel
    return channel


def _with_retries(broker: RabbitmqBroker, work: Callable[[], _T]) -> _T:
    for attempt in range(_ATTEMPTS):
        try:
            return work()
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError):
            # An uncommitted transaction dies with its channel: nothing of
            # the batch was delivered, so sending it again doubles nothing.
            del broker.connection
            _tx_channels.channel = None
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def enqueue_many(
    broker: RabbitmqBroker, queue_name: str, actor_name: str, argument_lists: Iterable[tuple[Any, ...]]
) -> None:
    """Send one message per argument tuple, in order: a thousand per AMQP transaction.

    ``tx_commit`` returns once RabbitMQ has taken every message of the batch
    (as a publisher confirm would, for the lot in one round trip); the
    broker's before/after enqueue middleware hooks run as for ``send``.
    """
    messages: list[dramatiq.Message[Any]] = [
        dramatiq.Message(queue_name=queue_name, actor_name=actor_name, args=args, kwargs={}, options={})
        for args in argument_lists
    ]
    if not messages:
        return
    broker.declare_queue(queue_name, ensure=True)
    for message in messages:
        broker.emit_before("enqueue", message, None)
    for start in range(0, len(messages), _BATCH):
        bodies = [message.encode() for message in messages[start : start + _BATCH]]

        def publish(bodies: list[bytes] = bodies) -> None:
            channel = _tx_channel(broker)
            for body in bodies:
                channel.basic_publish(exchange="", routing_key=queue_name, body=body, properties=_PERSISTENT)
            channel.tx_commit()

        _with_retries(broker, publish)
    for message in messages:
        broker.emit_after("enqueue", message, None)


def _ready(channel: Any, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of ``queue``; (0, 0) when it does not exist yet."""
    frame = channel.queue_declare(queue=queue, passive=True)
    return int(frame.method.message_count), int(frame.method.consumer_count)


def _counts(parameters: Any, queues: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(ready, consumers) of each of ``queues``, on a connection of its own (blocking)."""
    counts: dict[str, tuple[int, int]] = {}
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        for queue in queues:
            try:
                counts[queue] = _ready(channel, queue)
            except pika.exceptions.ChannelClosedByBroker:  # 404: never declared
                counts[queue] = (0, 0)
                channel = connection.channel()
    finally:
        connection.close()
    return counts


def held_messages(broker: RabbitmqBroker, queue: str) -> int:
    """Ready messages of ``queue`` and of its delay queue (those in consumers' hands are not seen)."""
    counts = _counts(broker.parameters, (queue, dq_name(queue)))
    return sum(ready for ready, _ in counts.values())


def nothing_waiting(broker: RabbitmqBroker, queues: Sequence[str]) -> bool:
    """Whether ``queues`` and their delay queues have no ready message (blocking).

    The stall scan's answer on RabbitMQ: with nothing waiting, an import
    idle for ``STALL_AFTER_S`` has no message left but perhaps one in a
    worker's hands (invisible over AMQP) that has made no progress for that
    long; re-sending its work then doubles a message that every actor takes
    idempotently. With messages waiting it cannot tell whose they are, and
    takes no import as stalled.
    """
    names = [name for queue in queues for name in (queue, dq_name(queue))]
    return all(ready == 0 for ready, _ in _counts(broker.parameters, names).values())


def depths(parameters: Any, queues: Sequence[str]) -> list[QueueDepth]:
    """Every queue's depth: ready, delayed (ready in its delay queue), dead (blocking)."""
    names = [name for queue in queues for name in (queue, dq_name(queue), xq_name(queue))]
    counts = _counts(parameters, names)
    return [QueueDepth(q, counts[q][0], 0, counts[dq_name(q)][0], counts[xq_name(q)][0]) for q in queues]


def worker_processes(parameters: Any, queue: str) -> list[BrokerProcess]:
    """One entry per consumer of ``queue`` (a worker process each), seen now (blocking)."""
    _, consumers = _counts(parameters, (queue,))[queue]
    return [BrokerProcess(id=f"consumer {n + 1} of {queue}", seconds_ago=0.0) for n in range(consumers)]


def retry_dead_letters(parameters: Any, queue: str) -> int:
    """Move ``queue``'s dead letters back onto it, oldest first; return how many moved (blocking).

    Each message keeps its body, so dramatiq's Retries middleware still
    counts the retries it used up: it gets one more attempt.
    """
    moved = 0
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        try:
            total, _ = _ready(channel, xq_name(queue))
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        channel.tx_select()
        while moved < total:
            batch = 0
            while batch < _BATCH and moved + batch < total:
                method, _, body = channel.basic_get(xq_name(queue), auto_ack=False)
                if method is None:
                    break
                channel.basic_publish(exchange="", routing_key=queue, body=body, properties=_PERSISTENT)
                channel.basic_ack(method.delivery_tag)
                batch += 1
            channel.tx_commit()
            if batch == 0:
                break
            moved += batch
    finally:
        connection.close()
    return moved
