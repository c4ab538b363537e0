"""What ``throughput.py`` measures against, and the ground it measures on.

- ``stock_ceiling``: a no-op async actor on a *stock* dramatiq RedisBroker
  (``stock_noop_actor.py``: dramatiq's default middleware plus ``AsyncIO``,
  nothing of ours), consumed by ``dramatiq stock_noop_actor`` with the
  Procfile's processes, threads and prefetch. It anchors ``ceiling`` (our
  broker, middleware and encoder on the same no-op work) to dramatiq as
  shipped: what our layer costs per message is the gap between the two.
- ``import_history``: an import of another tenant run to ``done`` with the
  real system before anything is measured, so that the measurements run on a
  database with statistics and history (its finalize ANALYZEs the tables), as
  in production, and not on empty tables the planner knows nothing about.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    FINAL_FAILURES,
    NAMESPACE,
    ROOT,
    BenchError,
    Worker,
    procfile_command,
    subprocess_env,
)

STOCK_MODULE = "stock_noop_actor"
STOCK_QUEUE = "bench_stock_noop"  # stock_noop_actor.QUEUE (not imported here: it installs its broker)
STOCK_READY = "Worker process is ready for action."  # dramatiq's CLI, once per worker process
STOCK_STOP_SECONDS = 30
HISTORY_TENANT = "bench-history"
HISTORY_SEED = 3  # not the measured file's (7): other people


def stock_ceiling_command() -> str:
    """``dramatiq stock_noop_actor`` with the Procfile worker line's prefetch, processes and threads."""
    line = procfile_command("worker")
    settings = {
        "prefetch": re.search(r"\bdramatiq_queue_prefetch=(\S+)", line),
        "processes": re.search(r"--processes\s+(\S+)", line),
        "threads": re.search(r"--threads\s+(\S+)", line),
    }
    missing = [name for name, match in settings.items() if match is None]
    if missing:
        raise BenchError(f"cannot read the {', '.join(missing)} of the Procfile's worker line: {line!r}")
    prefetch, processes, threads = (m.group(1) for m in settings.values() if m is not None)
    return (
        f"env dramatiq_queue_prefetch={prefetch}"
        f" dramatiq {STOCK_MODULE} --processes {processes} --threads {threads}"
    )


async def stock_ceiling(rows: int, worker: Worker, env: dict[str, str]) -> dict[str, Any]:
    """N stock messages enqueued beforehand, then the stock worker's boot → its queue empty.

    Timed as ``Bench.ceiling`` times our broker: from the worker's boot (each
    process ready) to the queue's ``.msgs`` hash empty (every message
    acknowledged). The queue is filled by ``stock_noop_actor.py`` run as a
    script: stock ``actor.send``, pipelined, in a process that loads nothing
    of ours.
    """
    import redis

    filled = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{STOCK_MODULE}.py"), str(rows)],
        cwd=ROOT,
        env=subprocess_env(env),
        capture_output=True,
        text=True,
        timeout=rows * 0.01 + 120,
    )
    if filled.returncode != 0:
        raise BenchError(f"filling the stock queue failed: {filled.stderr[-2000:]}")
    enqueued = json.loads(filled.stdout.splitlines()[-1])["seconds"]
    client = redis.Redis.from_url(env["REDIS_URL"])
    key = f"{NAMESPACE}:{STOCK_QUEUE}.msgs"
    worker.ready_marker, worker.stop_seconds = STOCK_READY, STOCK_STOP_SECONDS
    try:
        if (queued := client.hlen(key)) != rows:
            raise BenchError(f"the stock queue holds {queued} messages, not {rows}")
        worker.start()
        acked_before_boot = rows - client.hlen(key)  # as Bench.ceiling: consumers start before the log says
        deadline = worker.booted_at + rows * 0.01 + 120
        while (left := client.hlen(key)) > 0:
            if time.monotonic() > deadline:
                raise BenchError(f"the stock no-op worker left {left} messages; see {worker.log_path}")
            await asyncio.sleep(0.01)
        consumed = time.monotonic() - worker.booted_at
        _, child_rss = worker.peak_rss_mb()
    finally:
        worker.stop()
        client.close()
    log = worker.log_path.read_text(errors="replace")
    return {
        # Lines of stock dramatiq giving up a Redis call for a while (an exhausted
        # redis-py pool, say): the figure then measures those stalls.
        "stock_ceiling_connection_errors": log.count("connection error"),
        "stock_ceiling_msgs_per_s": round(rows / consumed),
        "stock_ceiling_seconds": round(consumed, 2),
        "stock_ceiling_acked_before_boot": acked_before_boot,
        "stock_enqueue_msgs_per_s": round(rows / enqueued),
        "stock_ceiling_worker_peak_rss_mb": child_rss,
    }


async def import_history(
    rows: int,
    database_url: str,
    work_dir: Path,
    worker: Worker,
    producer_command: Callable[[str, Path], list[str]],
    env: dict[str, str],
) -> float:
    """Import ``rows`` generated people for ``HISTORY_TENANT`` to ``done``; return the seconds.

    The real system, as the system measurement runs it (the Procfile worker,
    booted, and the producer CLI), from the worker's start to ``done``.
    """
    import asyncpg

    from producer.demo.sample import write_people_csv

    path = write_people_csv(work_dir / "history.csv", rows, seed=HISTORY_SEED)
    started = time.monotonic()
    deadline = started + rows * 0.01 + 120
    conn = await asyncpg.connect(database_url)
    out = (work_dir / "history-producer.out").open("wb")
    producer: subprocess.Popen[bytes] | None = None
    try:
        worker.start()
        producer = subprocess.Popen(
            producer_command(HISTORY_TENANT, path), cwd=ROOT, env=subprocess_env(env), stdout=out, stderr=out
        )
        while True:
            state = await conn.fetchval(
                "SELECT state FROM imports WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1", HISTORY_TENANT
            )
            if state == "done":
                break
            if state in FINAL_FAILURES or producer.poll() not in (None, 0):
                raise BenchError(f"the history import failed ({state}); see {work_dir} (--keep-files)")
            if worker.process is not None and worker.process.poll() is not None:
                raise BenchError(f"the worker died during the history import; see {worker.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"the history import was not done within {deadline - started:.0f}s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
    finally:
        worker.stop()
        if producer is not None:
            if producer.poll() is None:
                producer.kill()
            producer.wait()
        out.close()
        await conn.close()
