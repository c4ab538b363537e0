#!/usr/bin/env python
"""Summarise ``py-spy record --format raw [--threads]`` output: top self and cumulative frames.

    .venv/bin/python tests/bench/pyspy_summary.py /tmp/prof/worker-*.txt [--top 25] [--busy]

Each raw line is ``frame;frame;...;frame COUNT`` (root first; with
``--threads`` the first frame names the thread). Self time is the last frame's,
cumulative time any frame's (counted once per stack). ``--busy`` leaves out
the samples whose last frame is a wait (a worker thread waiting for its
coroutine, a consumer sleeping between polls of an empty queue, a thread
blocked on a socket), which py-spy still records for threads holding no GIL
in a C call, so what is left is where the process spends CPU.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

WAITS = (
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "EpollSelector.select (selectors.py)",
    "_RedisConsumer.__next__ (dramatiq/brokers/redis.py)",  # time.sleep between empty polls
    "_CtypesTimeoutManager.run (dramatiq/middleware/time_limit.py)",  # time.sleep
    "SocketBuffer._read_from_socket (redis/_parsers/socket.py)",  # recv: waiting on Redis
    "worker_process (dramatiq/cli.py)",  # the process's main thread, waiting
)


def _frame(text: str) -> str:
    return re.sub(r":\d+\)$", ")", text)


def summarise(path: Path, top: int, busy: bool) -> None:
    own: collections.Counter[str] = collections.Counter()
    cumulative: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = kept = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread ", "process ")) else ""
        frames = [_frame(f) for f in (frames[1:] if thread else frames)]
        if busy and frames and frames[-1] in WAITS:
            continue
        kept += count
        threads[re.sub(r"\(\d+\)|0x[0-9a-f]+", "", thread).strip() or "-"] += count
        if frames:
            own[frames[-1]] += count
        for name in set(frames):
            cumulative[name] += count
    print(f"== {path}: {total} samples" + (f", {kept} busy ({kept / max(total, 1):.0%})" if busy else ""))
    for title, counter in (("threads", threads), ("self", own), ("cumulative", cumulative)):
        print(f"-- {title}")
        for name, count in counter.most_common(top):
            print(f"{count / max(kept, 1):6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--busy", action="store_true", help="leave out samples that end in a wait")
    args = parser.parse_args()
    for path in args.files:
        summarise(path, args.top, args.busy)


if __name__ == "__main__":
    main()
