"""core.queues (and its Redis side, core.queues.redis) against a real Redis
and dramatiq's own RedisBroker: the depths it reads and the dead letters it
puts back are the ones dramatiq wrote and reads. A namespace of its own, so
the session's worker never sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from core import queues
from core.queues import redis as redis_queues
from core.queues.redis_broker import BatchingRedisBroker
from tests.support.environment import TEST_REDIS_NAMESPACE
from tests.support.services import wait_until

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


@pytest.fixture
def batching_broker(redis_url: str) -> Iterator[BatchingRedisBroker]:
    namespace = NAMESPACE + "-batching"
    # A flush long after the test's own: only close() or flush() settles ids.
    batching = BatchingRedisBroker(url=redis_url, namespace=namespace, ack_gather_ms=600_000)
    batching.declare_queue("rows")
    yield batching
    for key in batching.client.scan_iter(match=namespace + "*"):
        batching.client.delete(key)
    batching.close()


def test_the_batching_broker_acknowledges_in_one_call_after_the_fact(
    batching_broker: BatchingRedisBroker,
) -> None:
    for n in range(50):
        batching_broker.enqueue(message(n))
    client, namespace = batching_broker.client, batching_broker.namespace
    consumer = batching_broker.consume("rows", prefetch=20, timeout=100)
    taken = [wait_until(lambda: next(consumer), timeout=10, what="a message") for _ in range(20)]
    assert client.llen(f"{namespace}:rows") == 30, "one fetch of the whole prefetch"

    consumer.ack(taken[0])
    # One message missing is under a tenth of the prefetch: no fetch for it.
    assert next(consumer) is None and client.llen(f"{namespace}:rows") == 30
    assert client.hlen(f"{namespace}:rows.msgs") == 50, "recorded, not yet acknowledged"

    consumer.ack(taken[1])
    consumer.nack(taken[2])
    refill = wait_until(lambda: next(consumer), timeout=10, what="the refill")
    assert client.llen(f"{namespace}:rows") == 27, "the three missing fetched in one call"
    consumer.ack(refill)

    consumer.close()  # a graceful stop: everything recorded is settled now
    # Three acknowledged, one dead-lettered; of the 23 fetched, 19 are still in the worker's hands.
    assert client.hlen(f"{namespace}:rows.msgs") == 50 - 4
    assert client.zcard(f"{namespace}:rows.XQ") == 1
    assert client.scard(f"{namespace}:__acks__.{batching_broker.broker_id}.rows") == 19


def test_a_fetch_in_doubt_is_revoked_so_a_late_one_strands_nothing(
    batching_broker: BatchingRedisBroker,
) -> None:
    """Issue 27: a fetch whose reply was lost (or which reaches Redis after the client gave up, as a
    command retransmitted once a cut link is back does) must not leave ids in the worker's ack set
    that no thread of the worker holds: the worker being alive, nothing would ever give them back."""
    for n in range(10):
        batching_broker.enqueue(message(n))
    client, namespace = batching_broker.client, batching_broker.namespace
    acks, queue = f"{namespace}:__acks__.{batching_broker.broker_id}.rows", f"{namespace}:rows"
    real_fetch = batching_broker._fetch_script
    stale: dict[str, Any] = {}

    def reply_lost(**call: Any) -> Any:
        stale.update(call)
        real_fetch(**call)  # Redis ran it: ids moved into the ack set...
        raise redis.exceptions.TimeoutError("Timeout reading from redis")  # ...and the reply never came

    batching_broker._fetch_script = reply_lost  # type: ignore[method-assign]
    consumer = batching_broker.consume("rows", prefetch=4, timeout=100)
    with pytest.raises(redis.exceptions.TimeoutError):
        next(consumer)
    assert client.scard(acks) == 4 and client.llen(queue) == 6, "four ids stranded in the ack set"

    batching_broker._fetch_script = real_fetch  # type: ignore[method-assign]
    consumer = batching_broker.consume("rows", prefetch=4, timeout=100)  # dramatiq restarts its consumer
    taken = wait_until(lambda: next(consumer), timeout=10, what="a message")
    # The stranded four went back on the queue (behind the other six) before this fetch.
    assert client.scard(acks) == 4 and client.llen(queue) == 6
    assert taken.options["redis_message_id"].encode() in client.smembers(acks)

    # The failed fetch arrives again, late (a retransmission): refused, it moves nothing.
    assert real_fetch(**stale) == []
    assert client.scard(acks) == 4 and client.llen(queue) == 6
    consumer.close()
