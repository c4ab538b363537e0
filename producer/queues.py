"""The broker's queues as dramatiq 2.2.1's ``RedisBroker`` keeps them in Redis,
read for the operators' dashboard and metrics, and dead letters put back.

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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio

# The Procfile's worker consumes these (worker.actors names them).
QUEUES = ("rows", "imports", "invite_schedules", "invites")
_BATCH = 1_000  # dead letters moved per script call

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


def _key(namespace: str, name: str) -> str:
    return f"{namespace}:{name}"


def check_queue(name: str) -> str:
    """Return ``name`` if it is one of the broker's queues, else raise ValueError."""
    if name not in QUEUES:
        raise ValueError(f"no queue {name!r}: the queues are {', '.join(QUEUES)}")
    return name


async def queue_depths(client: redis.asyncio.Redis, namespace: str) -> list[QueueDepth]:
    """The depth of each queue, read in one round trip."""
    pipe = client.pipeline(transaction=False)
    for name in QUEUES:
        key = _key(namespace, name)
        pipe.llen(key)
        pipe.hlen(key + ".msgs")
        pipe.hlen(key + ".DQ.msgs")
        pipe.zcard(key + ".XQ")
    counts: list[Any] = await pipe.execute()
    depths = []
    for index, name in enumerate(QUEUES):
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
    key = _key(namespace, check_queue(queue))
    script = client.register_script(_RETRY_DEAD_LETTERS)
    moved = 0
    while True:
        seen, batch = await script(keys=[key, key + ".msgs", key + ".XQ", key + ".XQ.msgs"], args=[_BATCH])
        moved += int(batch)
        if int(seen) < _BATCH:
            return moved
