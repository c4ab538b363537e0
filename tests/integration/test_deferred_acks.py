"""core.queues.deferred on the worker's Redis broker (a real Redis): a row's message is
acknowledged only once its future is done; a failed one goes through the failure hook
(the worker's retries) first; one given back by a stopping process returns to its queue."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest
from dramatiq import Message, MessageProxy

from core.queues import deferred
from core.queues.redis_broker import BatchingRedisBroker
from tests.support.environment import TEST_REDIS_NAMESPACE
from tests.support.services import wait_until

NAMESPACE = f"{TEST_REDIS_NAMESPACE}-deferred"


@pytest.fixture
def broker(redis_url: str) -> Iterator[BatchingRedisBroker]:
    batching = BatchingRedisBroker(url=redis_url, namespace=NAMESPACE, ack_gather_ms=1)
    batching.declare_queue("rows")
    yield batching
    for key in batching.client.scan_iter(match=NAMESPACE + "*"):
        batching.client.delete(key)
    batching.close()


def _held(broker: BatchingRedisBroker) -> int:
    return int(broker.client.scard(f"{NAMESPACE}:__acks__.{broker.broker_id}.rows"))


def _fetch(broker: BatchingRedisBroker, count: int) -> tuple[Any, list[MessageProxy]]:
    for n in range(count):
        broker.enqueue(
            Message(queue_name="rows", actor_name="upsert_row", args=(1, n), kwargs={}, options={})
        )
    consumer = broker.consume("rows", prefetch=count, timeout=100)
    return consumer, [wait_until(lambda: next(consumer), timeout=10, what="a message") for _ in range(count)]


def test_a_message_is_acknowledged_once_its_rows_future_is_done(broker: BatchingRedisBroker) -> None:
    consumer, (first, second) = _fetch(broker, 2)
    futures: list[concurrent.futures.Future[Any]] = [concurrent.futures.Future(), concurrent.futures.Future()]
    for message, future in zip((first, second), futures, strict=True):
        deferred.defer(message.message_id, future)
        consumer.ack(message)  # what dramatiq calls once the actor returned
    broker.ack_buffer("rows").flush()
    assert _held(broker) == 2 and consumer.outstanding_message_count == 2

    futures[0].set_result(("created", False))
    wait_until(lambda: _held(broker) == 1, timeout=5, what="the first message acknowledged")
    assert consumer.outstanding_message_count == 1  # the prefetch counts the second still
    futures[1].set_result(("created", False))
    wait_until(lambda: _held(broker) == 0, timeout=5, what="the second message acknowledged")
    consumer.close()


def test_a_failed_batch_goes_through_the_retries_and_a_given_back_row_returns_to_its_queue(
    broker: BatchingRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str]] = []

    def retries(message: MessageProxy, failure: BaseException) -> None:
        seen.append((message.message_id, repr(failure)))
        if message.args[1] == 1:
            message.fail()  # its retries ran out: dead-lettered

    monkeypatch.setattr(deferred, "_failure_hook", retries)
    consumer, messages = _fetch(broker, 3)
    futures = [concurrent.futures.Future[Any]() for _ in messages]
    for message, future in zip(messages, futures, strict=True):
        deferred.defer(message.message_id, future)
        consumer.ack(message)
    futures[0].set_exception(ConnectionResetError("gone"))  # retried: acknowledged after the hook
    futures[1].set_exception(ValueError("bad"))  # given up: dead-lettered
    futures[2].set_exception(deferred.GivenBack())  # back on the queue, unacknowledged
    wait_until(lambda: _held(broker) == 0, timeout=5, what="the three settled")

    assert seen == [
        (messages[0].message_id, "ConnectionResetError('gone')"),
        (messages[1].message_id, "ValueError('bad')"),
    ]
    assert broker.client.zcard(f"{NAMESPACE}:rows.XQ") == 1
    given_back = messages[2].options["redis_message_id"].encode()
    assert broker.client.lrange(f"{NAMESPACE}:rows", 0, -1) == [given_back]
    consumer.close()
