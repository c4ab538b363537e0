"""Everything the system knows about Redis as dramatiq 2.2.1's ``RedisBroker`` uses it.

Nothing else in the project names a Redis key, runs a Lua script or calls a
private method of the broker: a move to another broker replaces this module
(and the one import in ``worker.queues`` that re-exports it).

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
``worker.queues``'.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import dramatiq
import redis
import redis.asyncio
import structlog
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, q_name
from dramatiq.rate_limits import BucketRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from worker.settings import Settings

log = structlog.get_logger(__name__)

_DEAD_LETTER_BATCH = 1_000  # dead letters moved per script call

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


# Acknowledges ARGV[3 .. 2 + ARGV[2]] and dead-letters the ids after them,
# as the dispatch script's "ack" and "nack" commands do one id at a time:
# an id leaves the worker's ack set first, so an id a crashed worker's
# maintenance already requeued (or one acked twice) is left alone. Also
# beats the worker's heartbeat, as every dispatch call does.
_SETTLE_MESSAGES = """
local acks, messages, xqueue, xmessages, heartbeats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local timestamp, acked, worker_id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
redis.call("zadd", heartbeats, timestamp, worker_id)
for i = 4, 3 + acked do
    if redis.call("srem", acks, ARGV[i]) > 0 then
        redis.call("hdel", messages, ARGV[i])
    end
end
for i = 4 + acked, #ARGV do
    local id = ARGV[i]
    if redis.call("srem", acks, id) > 0 then
        local message = redis.call("hget", messages, id)
        if message then
            redis.call("zadd", xqueue, timestamp, id)
            redis.call("hset", xmessages, id, message)
            redis.call("hdel", messages, id)
        end
    end
end
return 0
"""
# The most ids one script call carries.
_ACK_BATCH = 2_000
# After a failed flush (Redis away), the next attempt waits this long; the ids wait with it.
_ACK_RETRY_S = 1.0


class _AckBuffer:
    """The ids of one queue's finished messages, waiting to be acknowledged (or dead-lettered) in one call.

    Worker threads ``record`` ids and return; a flusher thread settles
    everything recorded in one script call a couple of milliseconds after
    the first id arrived. The buffer belongs to the broker, not to a
    consumer, so ids recorded while Redis is away outlive the consumer that
    dramatiq restarts meanwhile, and are settled once Redis answers.
    """

    def __init__(self, broker: RedisBroker, queue_name: str, gather_s: float) -> None:
        self.queue_name = queue_name
        self._broker = broker
        self._gather_s = gather_s
        self._lock = threading.Condition()
        self._acks: list[str] = []
        self._nacks: list[str] = []
        namespace, canonical = broker.namespace, q_name(queue_name)
        self._keys = [
            f"{namespace}:__acks__.{broker.broker_id}.{queue_name}",
            f"{namespace}:{queue_name}.msgs",
            f"{namespace}:{canonical}.XQ",
            f"{namespace}:{canonical}.XQ.msgs",
            f"{namespace}:__heartbeats__",
        ]
        self._script = broker.client.register_script(_SETTLE_MESSAGES)
        threading.Thread(target=self._flush_forever, name=f"acks-{queue_name}", daemon=True).start()

    def record(self, message_id: str, *, dead: bool = False) -> None:
        with self._lock:
            (self._nacks if dead else self._acks).append(message_id)
            self._lock.notify()

    def pending(self) -> int:
        with self._lock:
            return len(self._acks) + len(self._nacks)

    def _flush_forever(self) -> None:
        while True:
            with self._lock:
                while not (self._acks or self._nacks):
                    self._lock.wait()
            time.sleep(self._gather_s)
            if not self.flush():
                time.sleep(_ACK_RETRY_S)

    def flush(self) -> bool:
        """Settle every recorded id now; False (the ids kept for the next try) if Redis failed."""
        while True:
            with self._lock:
                acks, nacks = self._acks[:_ACK_BATCH], self._nacks[: max(_ACK_BATCH - len(self._acks), 0)]
                del self._acks[: len(acks)], self._nacks[: len(nacks)]
            if not acks and not nacks:
                return True
            try:
                self._script(
                    keys=self._keys,
                    args=[current_millis(), len(acks), self._broker.broker_id, *acks, *nacks],
                )
            except redis.RedisError as exc:
                with self._lock:
                    self._acks[:0], self._nacks[:0] = acks, nacks
                log.warning(
                    "broker.ack_flush_failed",
                    queue=self.queue_name,
                    ids=len(acks) + len(nacks),
                    error=repr(exc),
                )
                return False


class _BatchingConsumer(_RedisConsumer):
    """dramatiq's Redis consumer, acknowledging through the broker's ``_AckBuffer`` of its queue.

    dramatiq's consumer makes one Redis call per message acknowledged, and
    those calls were half of a worker's CPU. Here a worker thread's ``ack``
    or ``nack`` (called once its message is done: for a row, after the row's
    batch committed) records the id and returns; the buffer settles it
    within milliseconds, and ``close`` (a graceful stop) flushes it. A
    process killed between a commit and the flush leaves those ids in its
    ack set: they are redelivered once its heartbeat times out, and the
    idempotent actors find their work done.
    """

    broker: BatchingRedisBroker

    def ack(self, message: dramatiq.MessageProxy) -> None:
        self.broker.ack_buffer(self.queue_name).record(message.options["redis_message_id"])
        self.queued_message_ids.discard(message.message_id)

    def nack(self, message: dramatiq.MessageProxy) -> None:
        self.broker.ack_buffer(self.queue_name).record(message.options["redis_message_id"], dead=True)
        self.queued_message_ids.discard(message.message_id)

    def close(self) -> None:
        buffer = self.broker.ack_buffer(self.queue_name)
        if not buffer.flush():
            log.warning(
                "broker.acks_left",
                queue=self.queue_name,
                ids=buffer.pending(),
                then="settled when Redis answers, or redelivered once this worker's heartbeat times out",
            )
        super().close()


class BatchingRedisBroker(RedisBroker):
    """dramatiq's Redis broker whose consumers acknowledge in batches (``_BatchingConsumer``).

    ``ack_gather_ms``: how long a buffer waits, after an id arrives, for more
    to settle in the same call (``ACK_FLUSH_DELAY_MS``). ``poll_ms``: the
    longest an idle consumer sleeps between two looks at its queue
    (``CONSUMER_POLL_MS``; dramatiq's own is the worker timeout, a second),
    which is how late a quiet queue's next message can start: an import's
    dispatch, its finalizing step, a top-up.
    """

    def __init__(self, *args: Any, ack_gather_ms: int = 2, poll_ms: int = 100, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.ack_gather_s = ack_gather_ms / 1000
        self.poll_ms = poll_ms
        self._ack_buffers: dict[str, _AckBuffer] = {}
        self._ack_buffers_lock = threading.Lock()

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _BatchingConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
        return super().consume(queue_name, prefetch, min(timeout, self.poll_ms))

    def ack_buffer(self, queue_name: str) -> _AckBuffer:
        """The buffer of ``queue_name``'s finished messages (made on first use)."""
        buffer = self._ack_buffers.get(queue_name)
        if buffer is None:
            with self._ack_buffers_lock:
                buffer = self._ack_buffers.get(queue_name)
                if buffer is None:
                    buffer = self._ack_buffers[queue_name] = _AckBuffer(self, queue_name, self.ack_gather_s)
        return buffer


def build_broker(settings: Settings, middleware: Sequence[dramatiq.Middleware]) -> RedisBroker:
    """A Redis broker on the settings' server and namespace, with ``middleware``."""
    # Every worker thread acknowledges its own messages, so a process needs a
    # Redis connection per thread plus one per consumer. redis-py 6+ caps a
    # pool at 100 connections and then *fails* the call: at 128 threads the
    # acknowledgements and retries failed ("Too many connections") and
    # messages were lost. A blocking pool waits for a free connection instead.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=60
    )
    return BatchingRedisBroker(
        client=redis.Redis(connection_pool=pool),
        namespace=settings.redis_namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
        middleware=list(middleware),
        ack_gather_ms=settings.ack_flush_delay_ms,
        poll_ms=settings.consumer_poll_ms,
    )


def _key(namespace: str, name: str) -> str:
    return f"{namespace}:{name}"


def enqueue_many(
    broker: RedisBroker, queue_name: str, actor_name: str, argument_lists: Iterable[tuple[Any, ...]]
) -> None:
    """Enqueue one message per argument tuple, in order, in one round trip.

    ``Actor.send`` costs one round trip per message (about 4,500 a second
    here). This runs the broker's own enqueue script for the whole batch
    through a pipeline, and the broker's before/after enqueue middleware hooks
    itself, so the messages in Redis are exactly what ``send`` would have
    written and any standard dramatiq worker consumes them. It leans on two
    private methods of ``RedisBroker`` (dramatiq is pinned to 2.2.1 for this;
    a test compares what it stores with what ``send`` stores).
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
    dispatch = broker.scripts["dispatch"]
    pipeline = broker.client.pipeline(transaction=False)
    for index, message in enumerate(messages):
        broker.emit_before("enqueue", message, None)
        dispatch(
            keys=[broker.namespace],
            args=[
                "enqueue",
                current_millis(),
                message.queue_name,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                # One maintenance chance per batch, as one send would have:
                # the broker's chance is high (see Settings) and a batch is many calls.
                broker._should_do_maintenance("enqueue") if index == 0 else 0,
                broker._max_unpack_size(),  # type: ignore[no-untyped-call]
                message.options["redis_message_id"],
                message.encode(),
            ],
            client=pipeline,
        )
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
