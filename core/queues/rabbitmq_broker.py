"""The broker the worker consumes with on RabbitMQ: dramatiq 2.2.1's ``RabbitmqBroker``, tuned.

What RabbitMQ does itself, and the Redis broker imitates with scripts, is
left to RabbitMQ here:

- **Acknowledgements**: a consumer's ``basic_ack`` is a frame written on its
  channel from the connection's own thread (``add_callback_threadsafe``),
  with no answer awaited: nothing to batch, unlike the Redis broker's one
  script call per acknowledgement.
- **Prefetch**: the worker's ``dramatiq_queue_prefetch`` is the channel's
  ``basic_qos`` prefetch count; RabbitMQ never has more than that many of
  a queue's messages in one consumer's hands.
- **Redelivery**: a consumer whose connection closes, or misses its AMQP
  heartbeats for the heartbeat timeout (a killed process, a host cut off),
  has every unacknowledged message put back on its queue by RabbitMQ and
  delivered to another consumer, flagged ``redelivered``; a graceful stop
  closes the channel, which returns the prefetched messages at once.
- **Dead letters**: a message whose retries ran out is ``basic_nack``-ed
  without requeue, and the queue's dead-letter exchange routes it to
  ``<queue>.XQ``, where a TTL drops it after seven days.
- **Publisher confirms**: every ``send`` waits for RabbitMQ to confirm the
  message is stored (durable queues, persistent messages), and is retried on
  a lost connection; ``core.queues.rabbitmq.enqueue_many`` publishes in
  batches inside AMQP transactions, one round trip per thousand messages.
- **Delayed messages** are dramatiq's own delay queues (``<queue>.DQ``): the
  worker holds a due-later message unacknowledged and moves it to its queue
  when due. RabbitMQ's per-message TTL with a dead-letter exchange was not
  used: it expires messages only from a queue's head, so a days-ahead message
  would hold up a two-second retry behind it.

Queue names are dramatiq's: ``<queue>``, ``<queue>.DQ``, ``<queue>.XQ``, in
the virtual host of ``BROKER_URL`` (``amqp://user:pass@host:5672/vhost``),
which is what keeps deployments (and test runs) sharing a server apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer

from core.queues.deferred import DeferringConsumer
from core.settings import Settings


class _WorkerConsumer(DeferringConsumer, _RabbitmqConsumer):
    """dramatiq's consumer, whose acknowledgements wait for a row's batch (``core.queues.deferred``)."""


class TunedRabbitmqBroker(RabbitmqBroker):
    """dramatiq's RabbitMQ broker with publisher confirms, AMQP heartbeats from the settings
    and idle consumers that look again every ``poll_ms`` (dramatiq's worker asks for 1 s)."""

    def __init__(self, *args: Any, poll_ms: int = 100, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poll_ms = poll_ms

    # Its consumers acknowledge a row once its batch committed (core.queues.deferred).
    defers_acks = True

    @property
    def consumer_class(self) -> type[_RabbitmqConsumer]:
        return _WorkerConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
        # dramatiq caps the delay queues' prefetch at 65,535; RabbitMQ's
        # basic_qos takes a 16-bit count, so the cap holds here too.
        return super().consume(queue_name, min(prefetch, 65_535), min(timeout, self.poll_ms))


def connection_parameters(url: str, heartbeat_timeout_ms: int) -> pika.URLParameters:
    """pika's parameters for ``url``, whose AMQP heartbeat is the settings' heartbeat timeout.

    RabbitMQ declares a connection dead after missing heartbeats for about
    the negotiated timeout (both peers send one every half of it), and then
    requeues what its consumers held.
    """
    parameters = pika.URLParameters(url)
    parameters.heartbeat = max(1, math.ceil(heartbeat_timeout_ms / 1000))
    # A publish that RabbitMQ blocks (memory or disk alarm) fails after this
    # long instead of hanging a worker thread for ever.
    parameters.blocked_connection_timeout = 60
    return parameters


def build_broker(settings: Settings, middleware: Sequence[dramatiq.Middleware]) -> RabbitmqBroker:
    """A RabbitMQ broker on the settings' ``BROKER_URL``, with ``middleware``."""
    broker = TunedRabbitmqBroker(
        url=settings.broker_address,
        confirm_delivery=True,
        middleware=list(middleware),
        poll_ms=settings.consumer_poll_ms,
    )
    broker.parameters = connection_parameters(settings.broker_address, settings.heartbeat_timeout_ms)
    return broker
