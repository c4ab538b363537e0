"""``GET /metrics``: Prometheus text, computed at scrape time.

Workers are separate processes, so nothing here counts in memory: queue depths
are read from Redis (:mod:`core.queues`) and row and invite totals from
PostgreSQL on every scrape, then handed to ``prometheus_client`` to render.
A scrape costs a handful of Redis reads and four aggregate queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from core.queues import BrokerReader
from core.settings import Settings
from core.sources.runs import run_counts
from core.vocabulary import OUTCOMES, DeliveryState, ImportState, InviteState, RowStatus, RunOutcome
from producer.queries import QUERIES
from producer.web.context import pool_of, settings_of
from producer.web.operators import operator

METRICS_ROW_OUTCOMES = QUERIES["metrics_row_outcomes"]
METRICS_INVITE_STATUSES = QUERIES["metrics_invite_statuses"]
METRICS_IMPORT_STATES = QUERIES["metrics_import_states"]
WEBHOOK_DELIVERY_COUNTS = QUERIES["webhook_delivery_counts"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ROW_OUTCOMES = (*OUTCOMES, RowStatus.INVALID)


class _Snapshot(Collector):
    """Hands prometheus_client the families already read for this scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


async def read_metrics(pool: asyncpg.Pool, reader: BrokerReader, settings: Settings) -> list[Metric]:
    """Read every metric once, from the broker and PostgreSQL."""
    queues = GaugeMetricFamily(
        "bulk_import_queue_messages",
        "Messages in a broker queue: ready (waiting), in_progress (fetched, not acked),"
        " delayed (retries and schedules not yet due), dead (dead-lettered).",
        labels=["queue", "state"],
    )
    for depth in await reader.queue_depths():
        for state in ("ready", "in_progress", "delayed", "dead"):
            queues.add_metric([depth.name, state], getattr(depth, state))
    brokers = GaugeMetricFamily(
        "bulk_import_broker_processes",
        "Broker processes with a heartbeat younger than HEARTBEAT_TIMEOUT_MS (Redis: workers and"
        " producers), or worker processes consuming the row queue (RabbitMQ).",
        value=len(await reader.broker_processes()),
    )
    async with pool.acquire() as conn:
        outcomes = await conn.fetchrow(METRICS_ROW_OUTCOMES)
        invites = {r["status"]: r["invites"] for r in await conn.fetch(METRICS_INVITE_STATUSES)}
        imports = {r["state"]: r["imports"] for r in await conn.fetch(METRICS_IMPORT_STATES)}
        hooks = await conn.fetchrow(WEBHOOK_DELIVERY_COUNTS)
        source_runs = await run_counts(conn)
    rows = CounterMetricFamily(
        "bulk_import_rows",
        "Rows of every import so far by outcome (invalid: rejected at validation, never sent).",
        labels=["outcome"],
    )
    for outcome in ROW_OUTCOMES:
        rows.add_metric([outcome], outcomes[outcome])
    sent = CounterMetricFamily(
        "bulk_import_invites",
        "Invitations that reached an end: sent, or failed for good.",
        labels=["outcome"],
    )
    for end in (InviteState.SENT, InviteState.FAILED):
        sent.add_metric([end], invites.get(end, 0))
    by_status = GaugeMetricFamily(
        "bulk_import_invites_by_status", "Invitations by their current status.", labels=["status"]
    )
    for status in InviteState:
        by_status.add_metric([status], invites.get(status, 0))
    states = GaugeMetricFamily("bulk_import_imports", "Imports by state.", labels=["state"])
    for state in ImportState:
        states.add_metric([state], imports.get(state, 0))
    deliveries = CounterMetricFamily(
        "bulk_import_webhook_deliveries",
        "Webhook deliveries that reached an end: delivered (a 2xx), or dead (retries ran out, or 410 Gone).",
        labels=["outcome"],
    )
    for settled in (DeliveryState.DELIVERED, DeliveryState.DEAD):
        deliveries.add_metric([settled], hooks[settled])
    waiting = GaugeMetricFamily(
        "bulk_import_webhook_deliveries_pending",
        "Webhook deliveries still to be made: all of them (pending), and those that failed at least once.",
        labels=["state"],
    )
    for state in ("pending", "failing"):
        waiting.add_metric([state], hooks[state])
    runs = CounterMetricFamily(
        "bulk_import_source_runs",
        "Runs of scheduled sources that ended, by outcome: imported, unchanged (the same file as last"
        " imported), blocked (not importable, or over the sweep guard), failed (could not fetch).",
        labels=["outcome"],
    )
    for ended in RunOutcome:
        runs.add_metric([ended], source_runs.get(ended, 0))
    open_runs = GaugeMetricFamily(
        "bulk_import_source_runs_pending",
        "Runs of scheduled sources under way (retrying included).",
        value=source_runs.get("pending", 0),
    )
    return [queues, brokers, rows, sent, by_status, states, deliveries, waiting, runs, open_runs]


async def metrics(request: Request) -> Response:
    """``GET /metrics``: an operator token, unless METRICS_PUBLIC is set."""
    settings = settings_of(request)
    if not settings.metrics_public:
        await operator(request)
    families = await read_metrics(pool_of(request), request.app.state.broker_reader, settings)
    return Response(render(families), media_type=CONTENT_TYPE)


def render(families: Iterable[Metric]) -> bytes:
    """The Prometheus text exposition of ``families``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    rendered: Any = generate_latest(registry)
    return bytes(rendered)
