"""A no-op async actor on a stock dramatiq RedisBroker: the benchmark's outside anchor.

Nothing of the project: ``dramatiq.brokers.redis.RedisBroker`` with dramatiq's
default middleware plus ``AsyncIO``, dramatiq's JSON encoder, the broker's own
defaults. ``tests/bench/throughput.py`` runs it as stock dramatiq is run::

    env dramatiq_queue_prefetch=1000 dramatiq stock_noop_actor --processes 2 --threads 128

and, beforehand, fills its queue by running this file as a script (a process
of its own, so that nothing of ours, such as the project's encoder, is
loaded)::

    python tests/bench/stock_noop_actor.py N    # prints {"messages": N, "seconds": S}

Redis URL and namespace from ``REDIS_URL`` and ``REDIS_NAMESPACE``. One
setting is not dramatiq's default but redis-py's: the URL gets
``max_connections`` (``STOCK_REDIS_MAX_CONNECTIONS``, default 1,000, the size
of our broker's pool, ``REDIS_MAX_CONNECTIONS``) unless it names one. redis-py
8 caps a pool at 100 connections by default and *raises* past it: with 128
threads a process, stock dramatiq then logs "Too many connections" and
retries its acks 5 s later, and the anchor would measure those stalls rather
than dramatiq (``throughput.py`` counts such lines in the worker's log).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

QUEUE = "bench_stock_noop"
PIPELINE = 1_000  # messages per Redis round trip when filling the queue


def redis_url() -> str:
    """``REDIS_URL`` with a ``max_connections`` for redis-py's pool (see the module's doc)."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    if not any(name == "max_connections" for name, _ in query):
        query.append(("max_connections", os.environ.get("STOCK_REDIS_MAX_CONNECTIONS") or "1000"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


broker = RedisBroker(url=redis_url(), namespace=os.environ.get("REDIS_NAMESPACE") or "dramatiq")
broker.add_middleware(AsyncIO())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
async def noop(import_id: int, row_number: int) -> None:
    """Do nothing, with the row actor's signature."""


def enqueue(count: int) -> float:
    """``noop.send`` ``count`` times, pipelined ``PIPELINE`` at a time; return the seconds taken.

    Stock all the way: ``actor.send`` on a stock ``RedisBroker`` whose Redis
    client is a (non-transactional) pipeline, executed every ``PIPELINE``
    sends. The first message goes through the ordinary client, which also has
    the broker ask Redis its Lua stack size once (a pipeline cannot answer).
    """
    started = time.monotonic()
    noop.send(0, 0)
    pipe = broker.client.pipeline(transaction=False)
    noop.broker = RedisBroker(client=pipe, namespace=broker.namespace)
    try:
        for row in range(1, count):
            noop.send(0, row)
            if row % PIPELINE == 0:
                pipe.execute()
        pipe.execute()
    finally:
        noop.broker = broker
    return time.monotonic() - started


if __name__ == "__main__":
    messages = int(sys.argv[1])
    print(json.dumps({"messages": messages, "seconds": enqueue(messages)}))
