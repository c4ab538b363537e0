"""The broker side of a drill's world: Redis (a namespace of its own) or RabbitMQ (a vhost of its own).

``drill_broker()`` gives the one the run uses (``TEST_BROKER``). Each offers
the environment its processes read, how many messages it holds for a queue,
and how to empty it (what a Redis that lost its data does to a drill).
``redis_only`` marks the drills of Redis's own machinery (its acknowledgement
buffer, its Lua scripts, a Redis emptied), skipped on RabbitMQ.
"""

from __future__ import annotations

import os
import subprocess
import uuid

import pika
import pika.exceptions
import pytest
import redis

from core.queues import ALL_QUEUES
from tests.support.environment import TEST_BROKER, TEST_RABBITMQ_SERVER, TEST_RABBITMQ_VHOST, TEST_REDIS_URL
from tests.support.services import rabbitmq_vhost

redis_only = pytest.mark.skipif(TEST_BROKER != "redis", reason="drills Redis's own machinery")


class RedisDrillBroker:
    """A namespace of the test Redis for one drill."""

    def __init__(self) -> None:
        self.url = TEST_REDIS_URL
        self.namespace = f"{os.environ['REDIS_NAMESPACE']}-drill-{uuid.uuid4().hex[:8]}"
        self.env = {"BROKER_URL": self.url, "REDIS_NAMESPACE": self.namespace}
        self.redis = redis.Redis.from_url(self.url)

    def clear(self) -> int:
        """Delete every key of this drill's namespace (never anything else); return how many."""
        keys = list(self.redis.scan_iter(match=self.namespace + ":*", count=1_000))
        if keys:
            self.redis.delete(*keys)
        return len(keys)

    def held(self, queue: str) -> int:
        """Messages held for ``queue``: ready, delayed or in a worker's hands."""
        return sum(int(self.redis.hlen(f"{self.namespace}:{q}.msgs")) for q in (queue, queue + ".DQ"))

    def held_by_workers(self) -> int:
        """Messages fetched by a worker and neither acknowledged nor requeued (dramatiq's ack sets)."""
        keys = self.redis.scan_iter(match=f"{self.namespace}:__acks__.*", count=1_000)
        return sum(int(self.redis.scard(key)) for key in keys)

    def close(self) -> None:
        self.clear()
        self.redis.close()


class RabbitmqDrillBroker:
    """A virtual host of the test RabbitMQ for one drill, made here and deleted by ``close``."""

    def __init__(self) -> None:
        self.vhost = f"{TEST_RABBITMQ_VHOST}-drill-{uuid.uuid4().hex[:8]}"
        self.url = f"{TEST_RABBITMQ_SERVER}/{self.vhost}"
        self.namespace = self.vhost
        self.env = {"BROKER_URL": self.url}
        rabbitmq_vhost("add_vhost", self.vhost)
        _ctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def _queues(self) -> dict[str, int]:
        out = _ctl("list_queues", "-p", self.vhost, "--no-table-headers", "name", "messages")
        return {
            name: int(count) for name, count in (line.split() for line in out.splitlines() if line.strip())
        }

    def clear(self) -> int:
        """Purge every queue of the vhost (what RabbitMQ holds ready; not what consumers hold).

        Over AMQP, the row queue first: rabbitmqctl takes most of a second a
        queue, and a drill's import may be done by then.
        """
        purged = 0
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            channel = connection.channel()
            for name in (f"{queue}{suffix}" for queue in ALL_QUEUES for suffix in ("", ".DQ", ".XQ")):
                try:
                    purged += int(channel.queue_purge(name).method.message_count)
                except pika.exceptions.ChannelClosedByBroker:  # never declared
                    channel = connection.channel()
        finally:
            connection.close()
        return purged

    def held(self, queue: str) -> int:
        """Messages held for ``queue`` and its delay queue: ready or unacknowledged."""
        counts = self._queues()
        return counts.get(queue, 0) + counts.get(queue + ".DQ", 0)

    def held_by_workers(self) -> int:
        """Messages delivered to a consumer and not yet acknowledged, over every queue."""
        out = _ctl("list_queues", "-p", self.vhost, "--no-table-headers", "messages_unacknowledged")
        return sum(int(line) for line in out.split())

    def close(self) -> None:
        rabbitmq_vhost("delete_vhost", self.vhost)


def _ctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


def drill_broker() -> RedisDrillBroker | RabbitmqDrillBroker:
    """A broker world for one drill, on the run's broker."""
    return RabbitmqDrillBroker() if TEST_BROKER == "rabbitmq" else RedisDrillBroker()


def _redis_now_ms(client: redis.Redis) -> float:
    """Redis's clock in milliseconds: TIME is seconds and microseconds (the seconds alone
    are up to 999 ms early, which made a heartbeat 1.5 s old look 0.5 s old)."""
    seconds, microseconds = client.time()
    return seconds * 1000 + microseconds / 1000


class HostHoldings:
    """What one worker host's processes hold (delivered, not acknowledged), read again by ``count``.

    RabbitMQ: the unacknowledged messages of the channels whose connection
    comes from ``source_host`` (the drill proxy's address for that host).
    Redis: the ack sets of the brokers whose heartbeat is older than
    ``stale_s`` when this is made (a host cut off no longer beats; the other
    host's consumers beat several times a second), listed once here so that
    each ``count`` is a few SCARDs, not a scan of the whole keyspace.
    """

    def __init__(
        self, broker: RedisDrillBroker | RabbitmqDrillBroker, source_host: str, stale_s: float
    ) -> None:
        self.broker, self.source_host = broker, source_host
        self.keys: list[bytes] = []
        if isinstance(broker, RedisDrillBroker):
            client, namespace = broker.redis, broker.namespace
            now_ms = _redis_now_ms(client)
            stale = client.zrangebyscore(f"{namespace}:__heartbeats__", 0, now_ms - stale_s * 1000)
            prefixes = tuple(f"{namespace}:__acks__.{sid.decode()}.".encode() for sid in stale)
            self.keys = [
                key
                for key in client.scan_iter(match=f"{namespace}:__acks__.*", count=10_000)
                if key.startswith(prefixes)
            ]

    def count(self) -> int:
        broker = self.broker
        if isinstance(broker, RedisDrillBroker):
            return sum(int(broker.redis.scard(key)) for key in self.keys)
        connections = _ctl("list_connections", "-p", broker.vhost, "--no-table-headers", "pid", "peer_host")
        hosts = dict(line.split() for line in connections.splitlines() if line.strip())
        if self.source_host not in hosts.values():
            return 0  # every connection of the host closed: RabbitMQ requeued what it held
        channels = _ctl(
            "list_channels", "-p", broker.vhost, "--no-table-headers", "connection", "messages_unacknowledged"
        )
        rows = (line.split() for line in channels.splitlines() if line.strip())
        return sum(int(count) for pid, count in rows if hosts.get(pid) == self.source_host)


def holdings(broker: RedisDrillBroker | RabbitmqDrillBroker) -> str:
    """Who holds what, for a failed drill's message: connections and their unacknowledged messages."""
    if isinstance(broker, RabbitmqDrillBroker):
        connections = _ctl("list_connections", "-p", broker.vhost, "pid", "peer_host")
        return connections + _ctl(
            "list_channels", "-p", broker.vhost, "connection", "messages_unacknowledged"
        )
    client, namespace = broker.redis, broker.namespace
    now_ms = _redis_now_ms(client)
    beats = client.zrange(f"{namespace}:__heartbeats__", 0, -1, withscores=True)
    acks = {key.decode(): client.scard(key) for key in client.scan_iter(match=f"{namespace}:__acks__.*")}
    return f"heartbeats (ms ago): {[(m.decode(), now_ms - s) for m, s in beats]}; ack sets: {acks}"
