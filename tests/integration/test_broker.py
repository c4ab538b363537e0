"""The broker's Redis side: what pipelined enqueue writes, and connections for every thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import redis

from core.queues import current_broker, enqueue_many

broker = current_broker()


def test_enqueue_many_stores_what_send_stores(redis_url: str) -> None:
    import dramatiq

    # A queue no worker consumes, so both messages stay in Redis to be compared.
    @dramatiq.actor(queue_name="enqueue-test", broker=broker)
    def probe(import_id: int, row_number: int) -> None:
        raise AssertionError("never run")

    client = redis.Redis.from_url(redis_url)
    messages_key, queue_key = f"{broker.namespace}:enqueue-test.msgs", f"{broker.namespace}:enqueue-test"
    try:
        sent = probe.send(7, 2)
        enqueue_many("enqueue-test", "probe", [(7, 3), (7, 4)])

        stored = {key.decode(): orjson.loads(value) for key, value in client.hgetall(messages_key).items()}
        order = [message_id.decode() for message_id in client.lrange(queue_key, 0, -1)]
        assert len(stored) == 3 and order[0] == sent.options["redis_message_id"]
        by_row: dict[int, dict[str, Any]] = {m["args"][1]: m for m in stored.values()}
        assert [by_row[row]["options"]["redis_message_id"] for row in (2, 3, 4)] == order, "in order"

        def shape(message: dict[str, Any]) -> dict[str, Any]:
            variable = {"message_id", "message_timestamp", "args", "options"}
            return {k: v for k, v in message.items() if k not in variable} | {
                "options": sorted(message["options"])
            }

        assert shape(by_row[3]) == shape(by_row[4]) == shape(by_row[2])
        assert by_row[3]["args"] == [7, 3]
        assert len({m["message_id"] for m in stored.values()}) == 3
    finally:
        client.delete(messages_key, queue_key)
        client.close()


def test_enqueue_many_keeps_the_order_across_script_calls(redis_url: str) -> None:
    # 2,501 messages: the first through dramatiq's dispatch script, then three
    # calls of the bulk script (1,000 + 1,000 + 500).
    client = redis.Redis.from_url(redis_url)
    messages_key, queue_key = f"{broker.namespace}:enqueue-order.msgs", f"{broker.namespace}:enqueue-order"
    try:
        enqueue_many("enqueue-order", "probe", [(9, row) for row in range(2_501)])
        stored = client.hgetall(messages_key)
        order = [stored[message_id] for message_id in client.lrange(queue_key, 0, -1)]
        assert [orjson.loads(message)["args"] for message in order] == [[9, row] for row in range(2_501)]
        assert len(stored) == 2_501
    finally:
        client.delete(messages_key, queue_key)
        client.close()


def test_every_worker_thread_gets_a_redis_connection(redis_url: str) -> None:
    # 160 threads each holding a connection at once, as a worker's threads do
    # when they acknowledge together (the Procfile runs 128 per process).
    # redis-py's default pool fails the 101st caller with "Too many connections".
    key = f"{broker.namespace}:never-filled"

    def hold_a_connection(_: int) -> Any:
        return broker.client.blpop([key], timeout=1)

    with ThreadPoolExecutor(max_workers=160) as pool:
        results = list(pool.map(hold_a_connection, range(160)))

    assert results == [None] * 160
