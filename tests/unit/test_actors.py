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

from core import outbox, queues
from core.rows import Applied
from core.settings import Settings
from worker.middleware.settings import ActorSettings
from worker.middleware.transient import TransientErrors


@pytest.fixture
def stub() -> Iterator[StubBroker]:
    previous = dramatiq.broker.global_broker
    broker = StubBroker()  # type: ignore[no-untyped-call]
    broker.add_middleware(AsyncIO())
    broker.add_middleware(
        ActorSettings(replace(Settings(), row_max_retries=2, row_min_backoff_ms=10, invite_max_retries=5))
    )
    # After the stub's Retries, as in the worker's stack (see worker.broker).
    broker.add_middleware(TransientErrors())
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


def run(stub: StubBroker, *queue_names: str, fail_fast: bool = True) -> None:
    """Process every message of the queues (and what they send meanwhile) with a real worker.

    ``fail_fast=False`` for messages expected to use up their retries and be dead-lettered.
    """
    worker = dramatiq.Worker(stub, worker_timeout=50, worker_threads=2)
    worker.start()
    try:
        for name in queue_names:
            stub.join(name, fail_fast=fail_fast)
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

    async def process_rows(conn: Any, import_id: int, rows: list[int]) -> Applied:
        applied.append((import_id, rows))
        return Applied(dict.fromkeys(rows, "created"))

    async def claim_finalize(conn: Any, import_id: int) -> bool:
        return (import_id, [3]) in applied  # row 3 is the import's last

    async def finalize_import(conn: Any, import_id: int) -> str:
        finalized.append(import_id)
        return "finalizing"  # not done yet: nothing follows

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors, "_handoff", None)
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

    async def new_deliveries(conn: Any, import_id: int, event_type: str) -> list[int]:
        return []

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors.imports, "finalize_import", finalize_import)
    monkeypatch.setattr(actors.deliveries, "new_deliveries", new_deliveries)
    monkeypatch.setattr(actors.invites, "scheduled_batches", scheduled_batches)
    monkeypatch.setattr(actors.imports, "tenant_of_import", tenant_of_import)
    monkeypatch.setattr(actors.imports, "start_next_import", start_next_import)
    monkeypatch.setattr(actors.invites, "release_batch", release_batch)
    monkeypatch.setattr(actors.outbox, "dispatch_rows", dispatch_rows)
    actors.finalize_import.send(7)

    run(stub, queues.IMPORTS, queues.INVITE_SCHEDULES)

    assert released == [41]
    assert dispatched == [(8, 0)]


def test_rows_sent_back_by_finalizing_are_dispatched_again(
    actors: ModuleType, stub: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = iter(["rows", None])
    dispatched: list[tuple[int, int]] = []

    async def finalize_import(conn: Any, import_id: int) -> str | None:
        return next(steps)  # rows settled at recording went back to pending

    async def dispatch_rows(conn: Any, import_id: int, after: int = 0) -> None:
        dispatched.append((import_id, after))

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors.imports, "finalize_import", finalize_import)
    monkeypatch.setattr(actors.outbox, "dispatch_rows", dispatch_rows)
    actors.finalize_import.send(7)

    run(stub, queues.IMPORTS)

    assert dispatched == [(7, 0)]


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


@pytest.fixture
def failing_rows(actors: ModuleType, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Rows whose batches raise ``state["error"]``; rows failed by the gave-up actor are recorded."""
    state: dict[str, Any] = {"error": None, "attempts": 0, "failed": []}

    async def process_rows(conn: Any, import_id: int, rows: list[int]) -> Applied:
        state["attempts"] += 1
        raise state["error"]

    async def fail_row(conn: Any, import_id: int, row_number: int, reason: str) -> bool:
        state["failed"].append((import_id, row_number, reason))
        return True

    async def claim_finalize(conn: Any, import_id: int) -> bool:
        return False

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors, "_handoff", None)
    monkeypatch.setattr(actors.rows, "process_rows", process_rows)
    monkeypatch.setattr(actors.rows, "fail_row", fail_row)
    monkeypatch.setattr(actors.rows, "claim_finalize", claim_finalize)
    return state


def test_a_row_that_kept_losing_the_database_is_left_pending_not_failed(
    actors: ModuleType, stub: StubBroker, failing_rows: dict[str, Any]
) -> None:
    import asyncpg
    from structlog.testing import capture_logs

    failing_rows["error"] = asyncpg.ConnectionDoesNotExistError(
        "connection was closed in the middle of operation"
    )
    actors.upsert_row.send(7, 2)
    with capture_logs() as logs:
        run(stub, queues.ROWS, queues.IMPORTS, fail_fast=False)

    assert failing_rows["attempts"] == 3  # the first attempt and ROW_MAX_RETRIES (2) retries
    assert failing_rows["failed"] == []
    left = [entry for entry in logs if entry["event"] == "row.left_pending"]
    assert len(left) == 1, logs
    assert "connection was closed" in left[0]["reason"]


def test_a_row_that_kept_failing_for_another_reason_is_still_failed(
    actors: ModuleType, stub: StubBroker, failing_rows: dict[str, Any]
) -> None:
    import asyncpg

    failing_rows["error"] = asyncpg.InvalidTextRepresentationError('invalid input syntax for type uuid: "x"')
    actors.upsert_row.send(7, 2)
    run(stub, queues.ROWS, queues.IMPORTS, fail_fast=False)

    assert [(i, r) for i, r, _ in failing_rows["failed"]] == [(7, 2)]
    assert failing_rows["failed"][0][2].startswith("gave up after 2 attempts: ")
    assert "invalid input syntax" in failing_rows["failed"][0][2]


@pytest.mark.parametrize(
    ("error_name", "fails_import"), [("CannotConnectNowError", False), ("UndefinedTableError", True)]
)
@pytest.mark.parametrize("step", ["finalize_import", "sweep_missing_people"])
def test_an_import_step_that_kept_failing_fails_its_import_only_for_a_lasting_error(
    actors: ModuleType,
    stub: StubBroker,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    error_name: str,
    fails_import: bool,
) -> None:
    import asyncpg

    failed: list[tuple[int, str]] = []

    async def broken_step(*args: Any) -> str:
        raise getattr(asyncpg, error_name)("the database said no")

    async def fail_import(conn: Any, import_id: int, reason: str) -> None:
        failed.append((import_id, reason))

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors.imports, step, broken_step)
    monkeypatch.setattr(actors.imports, "fail_import", fail_import)
    # Give up at the first failure: the decorators' ten retries take minutes.
    monkeypatch.setitem(stub.get_actor(step).options, "max_retries", 0)
    stub.get_actor(step).send(7)
    run(stub, queues.IMPORTS, fail_fast=False)

    assert failed == ([(7, f"asyncpg.exceptions.{error_name}: the database said no")] if fails_import else [])


def test_a_dispatch_that_kept_failing_leaves_its_import_to_the_recovery(
    actors: ModuleType, stub: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from structlog.testing import capture_logs

    failed: list[int] = []

    async def dispatch_rows(conn: Any, import_id: int, after: int = 0) -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    async def fail_import(conn: Any, import_id: int, reason: str) -> None:
        failed.append(import_id)

    monkeypatch.setattr(actors, "get_pool", FakePool)
    monkeypatch.setattr(actors.outbox, "dispatch_rows", dispatch_rows)
    monkeypatch.setattr(actors.imports, "fail_import", fail_import)
    monkeypatch.setitem(stub.get_actor("dispatch_import").options, "max_retries", 0)
    actors.dispatch_import.send(7, 1000)
    with capture_logs() as logs:
        run(stub, queues.IMPORTS, fail_fast=False)

    assert failed == []
    left = [entry for entry in logs if entry["event"] == "import.left_pending"]
    assert [(e["step"], e["transient"]) for e in left] == [("dispatch_import", True)]


def test_the_worker_records_transient_errors_before_retries_hands_the_message_on() -> None:
    import json
    import subprocess
    import sys

    # The worker's own broker module, in a process of its own (importing it installs a broker).
    code = (
        "import json; from worker.broker import broker;"
        " print(json.dumps([type(m).__name__ for m in broker.middleware]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    names = json.loads(result.stdout.strip().splitlines()[-1])
    # emit_after runs the stack in reverse: later in the list is earlier in the "after" hooks.
    assert names.index("TransientErrors") > names.index("Retries")
