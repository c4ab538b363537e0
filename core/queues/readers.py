"""The web process's reads of the broker (the dashboard, /metrics): one reader per broker kind.

``open_reader`` in ``core.queues`` picks one by the settings' broker URL.
A reader holds its own client, apart from the process's dramatiq broker:
an asyncio Redis client, or, on RabbitMQ, short blocking AMQP connections
run off the event loop (a read is a handful of passive queue declarations).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio

from core.queues import rabbitmq
from core.queues import redis as redis_queues
from core.queues.rabbitmq_broker import connection_parameters
from core.queues.redis import BrokerProcess, QueueDepth
from core.settings import Settings


class BrokerReader(Protocol):
    """What the web process reads of the broker, and the one thing it changes (dead letters)."""

    async def queue_depths(self) -> list[QueueDepth]:
        """The depth of every queue."""
        ...

    async def broker_processes(self) -> list[BrokerProcess]:
        """The processes the broker sees alive."""
        ...

    async def retry_dead_letters(self, queue: str) -> int:
        """Move a queue's dead letters back onto it; return how many moved."""
        ...

    async def aclose(self) -> None:
        """Release the reader's connections."""
        ...


class RedisReader:
    """Reads with an asyncio Redis client of its own, under the settings' namespace."""

    def __init__(self, settings: Settings, queues: Sequence[str]) -> None:
        self.client = redis.asyncio.Redis.from_url(settings.broker_address)
        self.namespace = settings.redis_namespace
        self.heartbeat_timeout_ms = settings.heartbeat_timeout_ms
        self.queues = tuple(queues)

    async def queue_depths(self) -> list[QueueDepth]:
        return await redis_queues.queue_depths(self.client, self.namespace, self.queues)

    async def broker_processes(self) -> list[BrokerProcess]:
        return await redis_queues.broker_processes(self.client, self.namespace, self.heartbeat_timeout_ms)

    async def retry_dead_letters(self, queue: str) -> int:
        return await redis_queues.retry_dead_letters(self.client, self.namespace, queue)

    async def aclose(self) -> None:
        await self.client.aclose()


class RabbitmqReader:
    """Reads over AMQP, each on a short connection of its own in a thread."""

    def __init__(self, settings: Settings, queues: Sequence[str], consumers_of: str) -> None:
        self.parameters = connection_parameters(settings.broker_address, settings.heartbeat_timeout_ms)
        self.queues = tuple(queues)
        self.consumers_of = consumers_of

    async def queue_depths(self) -> list[QueueDepth]:
        return await asyncio.to_thread(rabbitmq.depths, self.parameters, self.queues)

    async def broker_processes(self) -> list[BrokerProcess]:
        return await asyncio.to_thread(rabbitmq.worker_processes, self.parameters, self.consumers_of)

    async def retry_dead_letters(self, queue: str) -> int:
        return await asyncio.to_thread(rabbitmq.retry_dead_letters, self.parameters, queue)

    async def aclose(self) -> None:
        return None
