"""A no-op async actor on the project's own broker: the benchmark's ceiling.

``tests/bench/throughput.py`` runs the Procfile's ``worker:`` line with this
module in place of ``worker.actors`` and this queue in place of ``rows
imports``, so what it measures is dramatiq's cost per message with the
project's broker, middleware (``AsyncIO``, ``DatabasePool``, ...) and worker
settings, and nothing of the row work.
"""

from __future__ import annotations

import dramatiq

from worker.broker import broker

QUEUE = "bench_noop"


@dramatiq.actor(queue_name=QUEUE, broker=broker)
async def noop(import_id: int, row_number: int) -> None:
    """Do nothing, with the row actor's signature (what is left is dramatiq's own cost)."""


__all__ = ["QUEUE", "broker", "noop"]
