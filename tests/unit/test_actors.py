"""The actors on dramatiq's StubBroker: what each decodes, calls and sends next.

No Redis and no PostgreSQL: the plain functions the actors call are replaced
by fakes that record their arguments, and a real dramatiq ``Worker`` runs the
actors from the stub's queues. The fixture reloads ``worker.actors`` with the
stub installed (and back onto the previous broker afterwards), as a worker
process imports it once its broker is installed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import dramatiq
import dramatiq.broker
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from worker import outbox, queues
from worker.middleware.settings import ActorSettings
from worker.settings import Settings


@pytest.fixture
def stub() -> Iterator[StubBroker]:
    previous = dramatiq.broker.global_broker
    broker = StubBroker()  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    broker.add_middleware(ActorSettings(replace(Settings(), row_max_retries=2, invite_max_retries=5)))
    dramatiq.set_broker(broker)
    try:
        yield broker
    finally:
        broker.close()
        dramatiq.broker.global_broker = previous
        if previous is not None and "worker.actors" in sys.modules:
            # Back on the broker the rest of the session uses: dramatiq
            # refuses a second declaration of a name, so the old ones go first.
            for name in broker.actors:
                previous.actors.pop(name, None)
            importlib.reload(sys.modules["worker.actors"])


@pytest.fixture
def actors(stub: StubBroker) -> ModuleType:
    if "worker.actors" in sys.modules:
        return importlib.reload(sys.modules["worker.actors"])
    return importlib.import_module("worker.actors")


class FakeConnection:
    async def __aenter__(self) -> FakeConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class FakePool:
    def acquire(self) -> FakeConnection:
        return FakeConnection()


def run(stub: StubBroker, *queue_names: str) -> None:
    """Process every message of the queues (and what they send meanwhile) with a real worker."""
    worker = dramatiq.Worker(stub, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        for name in queue_names:
            stub.join(name, fail_fast=True)
        worker.join()
    finally:
        worker.stop()


def test_every_outbox_target_is_a_declared_actor_on_its_queue(actors: ModuleType, stub: StubBroker) -> None:
    for actor_name, queue in outbox.SENT_ACTORS:
        assert stub.get_actor(actor_name).queue_name == queue


def test_the_procfile_worker_consumes_every_queue(actors: ModuleType, stub: StubBroker) -> None:
    from pathlib import Path

    procfile = (Path(__file__).resolve().parents[2] / "Procfile").read_text()
    worker_line = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    consumed = worker_line.split("--queues", 1)[1].split()
    assert sorted(consumed) == sorted(queues.ALL_QUEUES)
    assert {stub.get_actor(name).queue_name for name in stub.get_declared_actors()} == set(queues.ALL_QUEUES)


def test_retry_options_come_from_the_settings_when_the_actor_is_declared(
    actors: ModuleType, stub: StubBroker
) -> None:
    assert stub.get_actor("upsert_row").options["max_retries"] == 2
    assert stub.get_actor("send_invite").options["max_retries"] == 5
    assert stub.get_actor("finalize_import").options["max_retries"] == 10


def test_a_row_that_completes_its_import_sends_the_finalizing_step(
    actors: ModuleType, stub: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[tuple[int, list[int]]] = []
    finalized: list[int] = []

    async def process_rows(conn: Any, import_id: int, rows: list[int]) -> dict[int, str]:
        applied.append((import_id, rows))
        return dict.fromkeys(rows, "created")

    async def claim_finalize(conn: Any, import_id: int) -> bool:
        return (import_id, [3]) in applied  # row 3 is the import's last

    async def finalize_import(conn: Any, import_id: int) -> str:
        finalized.append(import_id)
        return "finalizing"  # not done yet: nothing follows

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors, "_batcher", None)
    monkeypatch.setattr(actors.rows, "process_rows", process_rows)
    monkeypatch.setattr(actors.rows, "claim_finalize", claim_finalize)
    monkeypatch.setattr(actors.imports, "finalize_import", finalize_import)
    actors.upsert_row.send(7, 2)
    run(stub, queues.ROWS, queues.IMPORTS)
    assert finalized == []

    actors.upsert_row.send(7, 3)
    run(stub, queues.ROWS, queues.IMPORTS)

    assert sorted(applied) == [(7, [2]), (7, [3])]
    assert finalized == [7]


def test_a_finished_import_schedules_its_invites_and_starts_the_tenants_next_import(
    actors: ModuleType, stub: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = datetime.now(UTC) - timedelta(seconds=1)
    released: list[int] = []
    dispatched: list[tuple[int, int]] = []

    async def finalize_import(conn: Any, import_id: int) -> str:
        return "done"

    async def scheduled_batches(conn: Any, import_id: int) -> list[Any]:
        return [actors.invites.Batch(41, due)]

    async def tenant_of_import(conn: Any, import_id: int) -> str:
        return "acme"

    async def start_next_import(conn: Any, tenant: str) -> int:
        return 8

    async def release_batch(conn: Any, batch_id: int, send_invites: Any, *, retry_after_s: float) -> int:
        released.append(batch_id)
        return 0

    async def dispatch_rows(conn: Any, import_id: int, after: int = 0) -> None:
        dispatched.append((import_id, after))

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors.imports, "finalize_import", finalize_import)
    monkeypatch.setattr(actors.invites, "scheduled_batches", scheduled_batches)
    monkeypatch.setattr(actors.imports, "tenant_of_import", tenant_of_import)
    monkeypatch.setattr(actors.imports, "start_next_import", start_next_import)
    monkeypatch.setattr(actors.invites, "release_batch", release_batch)
    monkeypatch.setattr(actors.outbox, "dispatch_rows", dispatch_rows)
    actors.finalize_import.send(7)

    run(stub, queues.IMPORTS, queues.INVITE_SCHEDULES)

    assert released == [41]
    assert dispatched == [(8, 0)]


def test_an_invite_over_the_shared_rate_comes_back_without_using_a_retry(
    actors: ModuleType, stub: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    later: list[tuple[int, int]] = []

    async def may_need_sending(conn: Any, invite_id: int) -> bool:
        calls.append(invite_id)
        return True

    async def no_permit() -> bool:
        return False

    async def send_invite_later(invite_id: int, delay_ms: int) -> None:
        later.append((invite_id, delay_ms))

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors, "_rate_permit", no_permit)
    monkeypatch.setattr(actors.invites, "may_need_sending", may_need_sending)
    monkeypatch.setattr(actors.outbox, "send_invite_later", send_invite_later)
    actors.send_invite.send(5)
    run(stub, queues.INVITES)

    assert calls == [5]
    assert later == [(5, actors.invites.RATE_PAUSE_MS)]
    # The actor returned normally: no retry of the message was scheduled, and nothing died.
    assert stub.queues[f"{queues.INVITES}.DQ"].qsize() == 0
    assert stub.dead_letters == []
