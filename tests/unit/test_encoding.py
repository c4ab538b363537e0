"""dramatiq messages on the wire: the project's encoder speaks dramatiq's default JSON."""

from __future__ import annotations

import dramatiq
import dramatiq.broker
import dramatiq.message
import pytest
from dramatiq.encoder import JSONEncoder
from dramatiq.errors import DecodeError
from dramatiq.message import Message

from core import queues
from core.queues.encoding import OrjsonEncoder
from core.settings import Settings


def _message() -> Message[None]:
    return Message(
        queue_name="rows",
        actor_name="upsert_row",
        args=(12, 3_456),
        kwargs={"note": "Zoë «quoted» \u2028"},
        options={"redis_message_id": "0b6f0c9e-1b8e-4c55-8f0e-5d1c2b9f4b7a", "retries": 2},
    )


def test_installing_the_broker_installs_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every process that sends or consumes installs its broker through core.queues.
    monkeypatch.setattr(dramatiq.broker, "global_broker", None)
    monkeypatch.setattr(dramatiq.message, "global_encoder", JSONEncoder())
    broker = queues.install(Settings())  # connects to nothing
    try:
        assert isinstance(dramatiq.get_encoder(), OrjsonEncoder)
        assert dramatiq.get_broker() is broker
    finally:
        broker.close()


def test_messages_round_trip_with_dramatiqs_default_encoder_both_ways() -> None:
    data = _message().asdict()
    ours, default = OrjsonEncoder(), JSONEncoder()

    assert default.decode(ours.encode(data)) == ours.decode(default.encode(data))
    assert ours.decode(default.encode(data)) == {**data, "args": [12, 3_456]}


def test_undecodable_bytes_raise_dramatiqs_decode_error() -> None:
    with pytest.raises(DecodeError):
        OrjsonEncoder().decode(b'{"queue_name": "rows", ')
