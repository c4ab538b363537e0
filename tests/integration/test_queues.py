"""worker.queues (and its Redis side, worker.queues.redis) against a real Redis
and dramatiq's own RedisBroker: the depths it reads and the dead letters it
puts back are the ones dramatiq wrote and reads. A namespace of its own, so
the session's worker never sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from tests.support.environment import TEST_REDIS_NAMESPACE
from tests.support.services import wait_until
from worker import queues
from worker.queues import redis as redis_queues

NAMESPACE = f"{TEST_REDIS_NAMESPACE}-queues"


@pytest.fixture
def broker(redis_url: str) -> Iterator[Any]:
    dramatiq_broker = RedisBroker(url=redis_url, namespace=NAMESPACE)  # type: ignore[no-untyped-call]
    dramatiq_broker.declare_queue("rows")
    yield dramatiq_broker
    for key in dramatiq_broker.client.scan_iter(match=NAMESPACE + "*"):
        dramatiq_broker.client.delete(key)
    dramatiq_broker.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    yield async_client
    await async_client.aclose()


def message(number: int) -> Message[Any]:
    return Message(queue_name="rows", actor_name="upsert_row", args=(1, number), kwargs={}, options={})


async def test_dead_letters_go_back_to_their_queue_where_dramatiq_consumes_them(
    broker: Any, client: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = [broker.enqueue(message(n)) for n in range(5)]
    broker.enqueue(message(99), delay=60_000)
    consumer = broker.consume("rows", prefetch=5, timeout=100)
    for _ in sent:  # fetched, failed for good: dramatiq's nack moves each to rows.XQ
        consumer.nack(wait_until(lambda: next(consumer), timeout=10, what="a message"))

    depth = (await queues.queue_depths(client, NAMESPACE))[0]
    assert (depth.name, depth.ready, depth.in_progress, depth.delayed, depth.dead) == ("rows", 0, 0, 1, 5)

    monkeypatch.setattr(redis_queues, "_DEAD_LETTER_BATCH", 2)  # several script calls: 2 + 2 + 1
    assert await queues.retry_dead_letters(client, NAMESPACE, "rows") == 5

    depth = (await queues.queue_depths(client, NAMESPACE))[0]
    assert (depth.ready, depth.dead) == (5, 0)
    again = broker.consume("rows", prefetch=5, timeout=100)
    back = [wait_until(lambda: next(again), timeout=10, what="a requeued message") for _ in sent]
    # The same messages, unchanged (ids included); order is by death time, which ties within a millisecond.
    assert sorted((m.message_id, m.args) for m in back) == sorted((m.message_id, m.args) for m in sent)
    for m in back:
        again.ack(m)
    assert await queues.retry_dead_letters(client, NAMESPACE, "rows") == 0
    with pytest.raises(ValueError, match="no queue 'default'"):
        await queues.retry_dead_letters(client, NAMESPACE, "default")


async def test_broker_processes_are_the_live_heartbeats(broker: Any, client: redis.asyncio.Redis) -> None:
    broker.enqueue(message(1))  # every dispatch call records the broker's heartbeat

    alive = await queues.broker_processes(client, NAMESPACE, heartbeat_timeout_ms=60_000)

    assert [process.id for process in alive] == [broker.broker_id]
    assert 0 <= alive[0].seconds_ago < 60
    await client.zadd(f"{NAMESPACE}:__heartbeats__", {"long-gone": 1_000})
    assert len(await queues.broker_processes(client, NAMESPACE, heartbeat_timeout_ms=60_000)) == 1


async def test_a_stopping_consumer_puts_back_what_it_fetched_and_never_handed_out(
    broker: Any, client: redis.asyncio.Redis
) -> None:
    sent = [broker.enqueue(message(n)) for n in range(5)]
    consumer = broker.consume("rows", prefetch=5, timeout=100)
    handed_out = wait_until(lambda: next(consumer), timeout=10, what="a message")  # all 5 fetched
    depth = (await queues.queue_depths(client, NAMESPACE))[0]
    assert (depth.ready, depth.in_progress) == (0, 5)

    assert queues.requeue_prefetched(consumer) == 4
    depth = (await queues.queue_depths(client, NAMESPACE))[0]
    assert (depth.ready, depth.in_progress) == (4, 1)  # the one handed out stays in progress
    again = broker.consume("rows", prefetch=5, timeout=100)
    back = [wait_until(lambda: next(again), timeout=10, what="a requeued message") for _ in range(4)]
    assert sorted(m.message_id for m in [handed_out, *back]) == sorted(m.message_id for m in sent)
    assert queues.requeue_prefetched(consumer) == 0
