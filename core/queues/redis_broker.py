"""The broker the worker consumes with: dramatiq 2.2.1's ``RedisBroker``, acknowledging in batches.

dramatiq's Redis consumer acknowledges each message with its own call of the
dispatch script; with a row per message, those calls were half of a worker
process's CPU. ``BatchingRedisBroker`` gives each queue an ``_AckBuffer``
that settles every id finished meanwhile in one script call. Like
``core.queues.redis``, of which it is the other half, it knows Redis keys
(``<ns>:__acks__.<broker id>.<queue>``, the ack set of a worker's fetched
messages; ``<ns>:<queue>.msgs``; ``<ns>:<queue>.XQ`` and ``.XQ.msgs``, the
dead letters; ``<ns>:__heartbeats__``; ``<ns>:__fetch_token__.<broker id>.<queue>``,
the token a worker's fetches must carry) and nothing else does.

It also fetches with a script of its own (``_FETCH``): a fetch whose call
failed (a read timeout, a lost connection) may still reach Redis later. On a
link that went down, the kernel keeps retransmitting the command after the
client gave up and closed the socket, and Redis runs it once the link is
back (seen: 1 s after a 17 s cut). dramatiq's fetch would then move ids into
the worker's ack set that no thread of the worker holds; the worker being
alive again, dramatiq's maintenance never gives them back (issue 27: rows
pending for good after a partition). So after a failed fetch the broker
*revokes* the queue's fetches in doubt before fetching again
(``_REVOKE_FETCHES``): a new token, which a late fetch does not carry, so it
changes nothing, and what the ack set holds goes back on the queue (a late
fetch that landed first included).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import dramatiq
import redis
import structlog
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import current_millis, q_name

from core.queues.deferred import DeferringConsumer
from core.settings import Settings

log = structlog.get_logger(__name__)

# Acknowledges ARGV[4 .. 3 + ARGV[2]] and dead-letters the ids after them,
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
# dramatiq's "fetch" command (LPOP up to ARGV[3] ids onto the worker's ack
# set, beat its heartbeat, return the messages), refused when ARGV[4] is not
# the queue's current fetch token for this worker (a fetch revoked by
# _REVOKE_FETCHES). No token stored (none revoked yet, or expired): any passes.
_FETCH = """
local queue, messages, acks, heartbeats, token_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local current = redis.call("get", token_key)
if current and current ~= ARGV[4] then
    return {}
end
redis.call("zadd", heartbeats, ARGV[1], ARGV[2])
local ids = {}
for i = 1, tonumber(ARGV[3]) do
    local id = redis.call("lpop", queue)
    if not id then
        break
    end
    ids[i] = id
    redis.call("sadd", acks, id)
end
if #ids == 0 then
    return {}
end
return redis.call("hmget", messages, unpack(ids))
"""
# Revokes a worker's fetches of a queue still in doubt: stores the new token
# ARGV[1] (for ARGV[2] ms, longer than a TCP retransmission lives), and puts
# every id of the worker's ack set back on the queue, as the dispatch script's
# "requeue" does, the worker's own in-flight messages among them (redelivered:
# the actors are idempotent, and their late acknowledgements change nothing).
_REVOKE_FETCHES = """
local queue, messages, acks, token_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
redis.call("set", token_key, ARGV[1], "PX", ARGV[2])
local ids = redis.call("smembers", acks)
for _, id in ipairs(ids) do
    if redis.call("hexists", messages, id) > 0 then
        redis.call("rpush", queue, id)
    end
end
redis.call("del", acks)
return #ids
"""
_TOKEN_TTL_MS = 3_600_000
# The most ids one script call carries.
_ACK_BATCH = 2_000
# After a failed flush (Redis away), the next attempt waits this long; the ids wait with it.
_ACK_RETRY_S = 1.0
# A busy consumer fetches again once this share of its prefetch is missing;
# until then it looks again this much later.
REFILL_SHARE = 0.1
_REFILL_WAIT_S = 0.002


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

    def __next__(self) -> dramatiq.MessageProxy | None:
        # dramatiq's consumer, its cache empty, fetches as many messages as
        # are missing from its prefetch: with a deep prefetch and messages
        # finishing one by one, that was a script call for every few
        # messages (a fifth of a busy worker's samples). Here a busy consumer
        # waits until a REFILL_SHARE of its prefetch is missing, and fetches
        # that in one call; an idle one (nothing outstanding) fetches at once.
        missing = self.prefetch - self.outstanding_message_count
        if not self.message_cache and 0 < missing < self.prefetch * REFILL_SHARE:
            time.sleep(_REFILL_WAIT_S)
            return None
        message: dramatiq.MessageProxy | None = super().__next__()  # type: ignore[no-untyped-call]
        return message

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


class _WorkerConsumer(DeferringConsumer, _BatchingConsumer):
    """The batching consumer whose acknowledgements wait for a row's batch (``core.queues.deferred``)."""


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
        self._fetch_script = self.client.register_script(_FETCH)
        self._revoke_script = self.client.register_script(_REVOKE_FETCHES)
        # Per queue: the token this worker's fetches carry, and whether a fetch failed since.
        self._fetch_tokens: dict[str, str] = {}
        self._fetches_in_doubt: set[str] = set()

    # Its consumers acknowledge a row once its batch committed (core.queues.deferred).
    defers_acks = True

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WorkerConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> dramatiq.Consumer:
        return super().consume(queue_name, prefetch, min(timeout, self.poll_ms))

    def _fetch_keys(self, queue_name: str) -> list[str]:
        namespace, worker = self.namespace, self.broker_id
        return [
            f"{namespace}:{queue_name}",
            f"{namespace}:{queue_name}.msgs",
            f"{namespace}:__acks__.{worker}.{queue_name}",
            f"{namespace}:__fetch_token__.{worker}.{queue_name}",
        ]

    def do_fetch(self, queue_name: str, prefetch: int) -> list[bytes | None]:
        """Fetch up to ``prefetch`` messages of ``queue_name`` into this worker's ack set (``_FETCH``).

        Called by dramatiq's consumer in place of its dispatch script's
        "fetch" (the same queue maintenance chance is kept: a dispatch call
        that does only that). After a failed fetch, the next one first
        revokes whatever that one may still do (see the module docstring).
        """
        keys = self._fetch_keys(queue_name)
        if queue_name in self._fetches_in_doubt:
            self.ack_buffer(queue_name).flush()  # what is done is not given back
            token = uuid.uuid4().hex
            returned = self._revoke_script(keys=keys, args=[token, _TOKEN_TTL_MS])
            self._fetch_tokens[queue_name] = token
            self._fetches_in_doubt.discard(queue_name)
            log.warning("broker.fetches_revoked", queue=queue_name, returned=returned)
        try:
            messages: list[bytes | None] = self._fetch_script(
                keys=[keys[0], keys[1], keys[2], f"{self.namespace}:__heartbeats__", keys[3]],
                args=[
                    current_millis(),
                    self.broker_id,
                    min(prefetch, self._max_unpack_size()),  # type: ignore[no-untyped-call]
                    self._fetch_tokens.get(queue_name, ""),
                ],
            )
        except redis.RedisError:
            self._fetches_in_doubt.add(queue_name)
            raise
        if self._should_do_maintenance("fetch"):
            self._maintain(queue_name)
        return messages

    def _maintain(self, queue_name: str) -> None:
        # The dispatch script's maintenance of one queue, on its cheapest command.
        self.scripts["dispatch"](
            keys=[self.namespace],
            args=[
                "qsize",
                current_millis(),
                queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                1,
                self._max_unpack_size(),  # type: ignore[no-untyped-call]
            ],
        )

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
        settings.broker_address, max_connections=settings.redis_max_connections, timeout=60
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
