"""The RabbitMQ side of ``core.queues``: enqueue in bulk, what the broker holds, depths, dead letters.

Each test gets a virtual host of its own (``tests.support.brokers``), on
whichever broker the run uses otherwise: these talk to RabbitMQ directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pika
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import dq_name, xq_name

from core.queues import rabbitmq
from core.queues.rabbitmq_broker import build_broker, connection_parameters
from core.queues.readers import RabbitmqReader
from core.settings import Settings
from tests.support.brokers import RabbitmqDrillBroker
from tests.support.environment import TEST_RABBITMQ_SERVER
from tests.support.services import require_service


@pytest.fixture
def vhost() -> Iterator[RabbitmqDrillBroker]:
    require_service(TEST_RABBITMQ_SERVER, "RabbitMQ")
    world = RabbitmqDrillBroker()
    try:
        yield world
    finally:
        world.close()


@pytest.fixture
def broker(vhost: RabbitmqDrillBroker) -> Iterator[RabbitmqBroker]:
    built = build_broker(Settings(broker_url=vhost.url, heartbeat_timeout_ms=5_000), [])
    try:
        yield built
    finally:
        built.close()


def _bodies(parameters: Any, queue: str) -> list[dict[str, Any]]:
    connection = pika.BlockingConnection(parameters)
    try:
        channel = connection.channel()
        found = []
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append(dramatiq.Message.decode(body).asdict())
    finally:
        connection.close()


def test_the_broker_confirms_publishes_and_beats_at_the_heartbeat_timeout(broker: RabbitmqBroker) -> None:
    assert broker.confirm_delivery
    assert broker.parameters.heartbeat == 5


def test_enqueue_many_sends_every_message_in_order_as_send_would(broker: RabbitmqBroker) -> None:
    rabbitmq.enqueue_many(broker, "rows", "upsert_row", [(7, n) for n in range(2_500)])

    assert rabbitmq.held_messages(broker, "rows") == 2_500
    bodies = _bodies(broker.parameters, "rows")
    assert [list(b["args"]) for b in bodies] == [[7, n] for n in range(2_500)]
    assert {(b["queue_name"], b["actor_name"]) for b in bodies} == {("rows", "upsert_row")}


def test_depths_count_ready_delayed_and_dead_per_queue(
    broker: RabbitmqBroker, vhost: RabbitmqDrillBroker
) -> None:
    rabbitmq.enqueue_many(broker, "rows", "upsert_row", [(1, n) for n in range(3)])
    broker.enqueue(
        dramatiq.Message(queue_name="rows", actor_name="a", args=(1, 9), kwargs={}, options={}), delay=60_000
    )
    _publish(broker, xq_name("rows"), 2)

    parameters = connection_parameters(vhost.url, 5_000)
    depth = {d.name: d for d in rabbitmq.depths(parameters, ("rows", "invites"))}

    assert (depth["rows"].ready, depth["rows"].delayed, depth["rows"].dead) == (3, 1, 2)
    assert (depth["invites"].ready, depth["invites"].delayed, depth["invites"].dead) == (0, 0, 0)
    assert rabbitmq.held_messages(broker, "rows") == 4  # ready and delayed, not the dead


async def test_the_reader_moves_dead_letters_back_onto_their_queue(
    broker: RabbitmqBroker, vhost: RabbitmqDrillBroker
) -> None:
    broker.declare_queue("rows", ensure=True)
    _publish(broker, xq_name("rows"), 5)
    reader = RabbitmqReader(Settings(broker_url=vhost.url), ("rows",), consumers_of="rows")

    assert await reader.retry_dead_letters("rows") == 5

    depth = (await reader.queue_depths())[0]
    assert (depth.ready, depth.dead) == (5, 0)
    assert await reader.retry_dead_letters("rows") == 0
    assert await reader.broker_processes() == []


def _publish(broker: RabbitmqBroker, queue: str, count: int) -> None:
    broker.declare_queue("rows", ensure=True)
    for n in range(count):
        message = dramatiq.Message(queue_name="rows", actor_name="a", args=(1, n), kwargs={}, options={})
        broker.channel.basic_publish(exchange="", routing_key=queue, body=message.encode())


def test_a_delayed_message_waits_in_the_delay_queue(broker: RabbitmqBroker) -> None:
    message = dramatiq.Message(queue_name="invites", actor_name="a", args=(1,), kwargs={}, options={})
    broker.enqueue(message, delay=5_000)

    assert _bodies(broker.parameters, "invites") == []
    (delayed,) = _bodies(broker.parameters, dq_name("invites"))
    assert delayed["options"]["eta"] > 0


async def test_the_invite_rate_kept_in_postgresql_gives_so_many_permits_a_second(database_url: str) -> None:
    from core.db import create_pool
    from core.invites import take_rate_permit

    pool = await create_pool(database_url, 2)
    try:
        name = f"rate-{id(pool)}"
        taken = [await take_rate_permit(pool, name, 3) for _ in range(5)]
        # Five asked within the same second (or across two): never more than 3 a second.
        assert taken.count(True) in (3, 4, 5) and taken[:3] == [True, True, True]
        async with pool.acquire() as conn:
            per_second = await conn.fetch("SELECT taken FROM rate_permits WHERE name = $1", name)
        assert all(row["taken"] <= 3 for row in per_second)
    finally:
        await pool.close()
