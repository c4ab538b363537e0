"""Everything the system knows about Redis as dramatiq 2.2.1's ``RedisBroker`` uses it.

Nothing else in the project names a Redis key, runs a Lua script or calls a
private method of the broker, but ``core.queues.redis_broker`` (the broker
the worker consumes with, acknowledging in batches): a move to another broker
replaces these two modules (and the imports in ``core.queues`` that
re-export them).

Key names (``dramatiq/brokers/redis/dispatch.lua``), under the namespace
``REDIS_NAMESPACE``:

- ``<ns>:<queue>``: list of the ids of messages waiting to be fetched;
  ``<ns>:<queue>.msgs``: hash id → message of every message not yet acked
  (waiting, or fetched by a worker and in progress).
- ``<ns>:<queue>.DQ`` and ``<ns>:<queue>.DQ.msgs``: the same for delayed
  messages (retries, scheduled invite batches), held until due.
- ``<ns>:<queue>.XQ``: sorted set of dead-lettered ids, scored by when they
  died; ``<ns>:<queue>.XQ.msgs``: their messages. Dead letters are deleted
  after the broker's ``dead_message_ttl`` (7 days by default).
- ``<ns>:__heartbeats__``: sorted set of broker ids scored by their last
  call's time in milliseconds. Every broker that talks to Redis is in it,
  worker processes and producers alike.
- ``<ns>:invite-rate``: the invite sends' shared rate bucket.

Functions here take the broker (or an asyncio client for the web process's
reads) and the queue names they work on; the names themselves are
``core.queues``'.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import dramatiq
import redis
import redis.asyncio
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

_DEAD_LETTER_BATCH = 1_000  # dead letters moved per script call
# What a call to Redis raises when it fails, and when Redis does not answer.
ERRORS: tuple[type[Exception], ...] = (redis.exceptions.RedisError,)
UNREACHABLE: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError,)

# Moves up to ARGV[1] dead letters of a queue back onto the queue, oldest
# first, as the dispatch script's "requeue" command does for a fetched
# message: the message's data goes back into the queue's hash under the same
# id, and its id onto the list's tail. The data is unchanged, so dramatiq's
# Retries middleware still counts the retries the message used up: it gets
# one more attempt, and is dead-lettered again if that attempt fails. Atomic
# per call, so a message is never in both places or in neither; bounded, so
# a large dead-letter queue never blocks Redis for long.
_RETRY_DEAD_LETTERS = """
local queue, messages, xqueue, xmessages = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ids = redis.call("zrange", xqueue, 0, tonumber(ARGV[1]) - 1)
local moved = 0
for _, id in ipairs(ids) do
    local data = redis.call("hget", xmessages, id)
    if data then
        redis.call("hset", messages, id, data)
        redis.call("rpush", queue, id)
        moved = moved + 1
    end
    redis.call("zrem", xqueue, id)
    redis.call("hdel", xmessages, id)
end
return {#ids, moved}
"""


def _key(namespace: str, name: str) -> str:
    return f"{namespace}:{name}"


# Enqueues ARGV[3 ..] (id, message pairs) on a queue as the dispatch script's
# "enqueue" command does one message at a time: the message into the queue's
# hash under its id, the id onto the queue's list, in order; and beats the
# sender's heartbeat once, as every dispatch call does.
_ENQUEUE_MANY = """
local queue, messages, heartbeats = KEYS[1], KEYS[2], KEYS[3]
redis.call("zadd", heartbeats, ARGV[1], ARGV[2])
local ids = {}
for i = 3, #ARGV, 2 do
    redis.call("hset", messages, ARGV[i], ARGV[i + 1])
    ids[#ids + 1] = ARGV[i]
end
for first = 1, #ids, 1000 do
    redis.call("rpush", queue, unpack(ids, first, math.min(first + 999, #ids)))
end
return #ids
"""
_ENQUEUE_BATCH = 1_000  # messages per script call


def enqueue_many(
    broker: RedisBroker, queue_name: str, actor_name: str, argument_lists: Iterable[tuple[Any, ...]]
) -> None:
    """Enqueue one message per argument tuple, in order, in one round trip.

    ``Actor.send`` costs one round trip and one script call per message
    (about 4,500 a second here). This builds the messages as ``send`` does,
    runs the broker's before/after enqueue middleware hooks itself, and
    writes them in one script call per thousand (``_ENQUEUE_MANY``, which
    stores exactly what the dispatch script's "enqueue" stores; the first
    message goes through the dispatch script itself, so the batch gets the
    queue maintenance chance one send would), all through one pipeline. Any
    standard dramatiq worker consumes them. It leans on two private methods
    of ``RedisBroker`` (dramatiq is pinned to 2.2.1 for this; a test compares
    what it stores with what ``send`` stores).
    """
    messages: list[dramatiq.Message[Any]] = [
        dramatiq.Message(
            queue_name=queue_name,
            actor_name=actor_name,
            args=args,
            kwargs={},
            options={"redis_message_id": str(uuid4())},
        )
        for args in argument_lists
    ]
    if not messages:
        return
    for message in messages:
        broker.emit_before("enqueue", message, None)
    now = current_millis()
    pipeline = broker.client.pipeline(transaction=False)
    first, rest = messages[0], messages[1:]
    broker.scripts["dispatch"](
        keys=[broker.namespace],
        args=[
            "enqueue",
            now,
            queue_name,
            broker.broker_id,
            broker.heartbeat_timeout,
            broker.dead_message_ttl,
            broker._should_do_maintenance("enqueue"),
            broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            first.options["redis_message_id"],
            first.encode(),
        ],
        client=pipeline,
    )
    enqueue = broker.client.register_script(_ENQUEUE_MANY)
    keys = [_key(broker.namespace, queue_name), _key(broker.namespace, queue_name) + ".msgs"]
    keys.append(_key(broker.namespace, "__heartbeats__"))
    for start in range(0, len(rest), _ENQUEUE_BATCH):
        pairs: list[Any] = []
        for message in rest[start : start + _ENQUEUE_BATCH]:
            pairs += (message.options["redis_message_id"], message.encode())
        enqueue(keys=keys, args=[now, broker.broker_id, *pairs], client=pipeline)
    pipeline.execute()
    for message in messages:
        broker.emit_after("enqueue", message, None)


def unacked_messages(broker: RedisBroker, queue: str) -> int:
    """Messages of ``queue`` not yet acknowledged: waiting, or in a worker's hands (blocking).

    Every one is a field of the queue's ``.msgs`` hash, where the broker keeps
    message bodies: it is what the queue costs Redis.
    """
    return int(broker.client.hlen(_key(broker.namespace, queue) + ".msgs"))


def held_messages(broker: RedisBroker, queue: str) -> int:
    """Messages the broker holds for ``queue``: ready, delayed, or in a worker's hands (blocking)."""
    return sum(unacked_messages(broker, name) for name in (queue, queue + ".DQ"))


def _import_of(message: bytes) -> int | None:
    try:
        args = json.loads(message).get("args") or []
    except (ValueError, AttributeError):
        return None
    first = args[0] if args else None
    if isinstance(first, dict):  # row_gave_up(message, retry_info)
        inner = first.get("args") or []
        first = inner[0] if inner else None
    return first if isinstance(first, int) else None


def imports_with_held_messages(
    broker: RedisBroker, queues: Sequence[str], scan_limit: int
) -> set[int] | None:
    """Ids of the imports the broker holds a message for in ``queues`` (blocking).

    The first argument of those queues' messages is an import id. None when
    they hold more than ``scan_limit`` messages: too many to read.
    """
    hashes = [_key(broker.namespace, name) + ".msgs" for queue in queues for name in (queue, queue + ".DQ")]
    client = broker.client
    if sum(client.hlen(key) for key in hashes) > scan_limit:
        return None
    found: set[int] = set()
    for key in hashes:
        for _, message in client.hscan_iter(key, count=1_000):
            import_id = _import_of(message)
            if import_id is not None:
                found.add(import_id)
    return found


def requeue_prefetched(consumer: dramatiq.Consumer) -> int:
    """Put back on its queue what a stopping consumer fetched but never handed out; return how many.

    dramatiq 2.2.1's Redis consumer fetches up to its prefetch in one call
    into ``message_cache`` (the ids move to the worker's ack set) and hands
    them out one by one. A graceful stop requeues the messages handed out
    and not started (the worker's work queue), not the rest of the cache:
    those would wait in the ack set for the worker's heartbeat to time out.
    """
    if not isinstance(consumer, _RedisConsumer) or not consumer.message_cache:
        return 0
    cache, consumer.message_cache = consumer.message_cache, []
    messages = [dramatiq.MessageProxy(dramatiq.Message.decode(data)) for data in cache if data is not None]
    consumer.requeue(messages)  # type: ignore[no-untyped-call]
    return len(messages)


def rate_limiter(broker: RedisBroker, name: str, per_second: int) -> BucketRateLimiter:
    """A rate of ``per_second`` shared by every process on this broker, under ``name``."""
    backend = RedisBackend(client=broker.client)
    return BucketRateLimiter(  # type: ignore[no-untyped-call]
        backend, _key(broker.namespace, name), limit=per_second, bucket=1_000
    )


@dataclass(frozen=True)
class QueueDepth:
    """How many messages a queue holds, by kind."""

    name: str
    ready: int  # waiting to be fetched
    in_progress: int  # fetched by a worker, not yet acked
    delayed: int  # retries and scheduled messages, not yet due (or due, not yet moved)
    dead: int  # dead-lettered (retries exhausted)


@dataclass(frozen=True)
class BrokerProcess:
    """One broker (a worker process or a producer) with a recent heartbeat."""

    id: str
    seconds_ago: float


async def queue_depths(
    client: redis.asyncio.Redis, namespace: str, queues: Sequence[str]
) -> list[QueueDepth]:
    """The depth of each queue, read in one round trip."""
    pipe = client.pipeline(transaction=False)
    for name in queues:
        key = _key(namespace, name)
        pipe.llen(key)
        pipe.hlen(key + ".msgs")
        pipe.hlen(key + ".DQ.msgs")
        pipe.zcard(key + ".XQ")
    counts: list[Any] = await pipe.execute()
    depths = []
    for index, name in enumerate(queues):
        ready, unacked, delayed, dead = (int(c) for c in counts[index * 4 : index * 4 + 4])
        # The two reads are not one snapshot: a message fetched in between
        # could make the difference negative for a moment.
        depths.append(QueueDepth(name, ready, max(unacked - ready, 0), delayed, dead))
    return depths


async def broker_processes(
    client: redis.asyncio.Redis, namespace: str, heartbeat_timeout_ms: int
) -> list[BrokerProcess]:
    """Brokers whose last heartbeat is younger than the timeout, most recent first."""
    now_ms = time.time() * 1000
    rows: Any = await client.zrevrangebyscore(
        _key(namespace, "__heartbeats__"), "+inf", now_ms - heartbeat_timeout_ms, withscores=True
    )
    return [
        BrokerProcess(id=bytes(member).decode(), seconds_ago=max(now_ms - float(score), 0) / 1000)
        for member, score in rows
    ]


async def retry_dead_letters(client: redis.asyncio.Redis, namespace: str, queue: str) -> int:
    """Move a queue's dead-lettered messages back onto it; return how many moved."""
    key = _key(namespace, queue)
    script = client.register_script(_RETRY_DEAD_LETTERS)
    moved = 0
    while True:
        seen, batch = await script(
            keys=[key, key + ".msgs", key + ".XQ", key + ".XQ.msgs"], args=[_DEAD_LETTER_BATCH]
        )
        moved += int(batch)
        if int(seen) < _DEAD_LETTER_BATCH:
            return moved
