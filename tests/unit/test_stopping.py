"""worker.middleware.stopping: one graceful stop per worker process, however many signals.

The handler dramatiq installs in a worker process is stood in for by one that
behaves the same way (the first call stops, a later one raises SystemExit);
the watchdog's way out of the process is replaced by a recorder.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import FrameType

import pytest

from core.queues import deferred
from core.settings import Settings
from worker.batching import RowBatcher, RowHandoff
from worker.middleware.stopping import EXIT_KILLED, STOP_SIGNALS, GracefulStop


class DramatiqHandler:
    """What ``dramatiq.cli.worker_process`` installs: stop on the first signal, SystemExit on the next."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.calls.append(signum)
        if len(self.calls) > 1:
            raise SystemExit(EXIT_KILLED)


class Ending:
    """Records the watchdog's exit instead of ending the test process (the watchdog then returns)."""

    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


@pytest.fixture
def handlers() -> Iterator[DramatiqHandler]:
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    handler = DramatiqHandler()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield handler
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def graceful_stop(timeout_ms: int, margin_s: float) -> tuple[GracefulStop, Ending]:
    ending = Ending()
    settings = replace(Settings(), worker_shutdown_timeout_ms=timeout_ms)
    return GracefulStop(settings, margin_s=margin_s, end_process=ending), ending


def test_the_first_stop_signal_stops_and_the_repeats_are_ignored(handlers: DramatiqHandler) -> None:
    stop, ending = graceful_stop(timeout_ms=0, margin_s=1.0)
    stop.after_process_boot(None)  # type: ignore[arg-type]
    stop.after_worker_boot(None, None)  # type: ignore[arg-type]

    for signum in (signal.SIGTERM, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.raise_signal(signum)  # a SystemExit from dramatiq's handler would fail the test here

    assert handlers.calls == [signal.SIGTERM]
    # The stop never completes here: the watchdog ends the process once it is overdue.
    assert ending.called.wait(timeout=30)
    assert ending.codes == [EXIT_KILLED]


def test_sigint_alone_starts_the_stop(handlers: DramatiqHandler) -> None:
    stop, ending = graceful_stop(timeout_ms=0, margin_s=0.1)
    stop.after_process_boot(None)  # type: ignore[arg-type]
    signal.raise_signal(signal.SIGINT)
    assert handlers.calls == [signal.SIGINT]
    assert ending.called.wait(timeout=30)


def test_a_booted_worker_whose_main_thread_is_gone_is_ended(handlers: DramatiqHandler) -> None:
    stop, ending = graceful_stop(timeout_ms=600_000, margin_s=5.0)
    stop.after_process_boot(None)  # type: ignore[arg-type]
    stop.after_worker_boot(None, None)  # type: ignore[arg-type]
    assert not ending.called.wait(timeout=1.2)  # alive and no stop requested: nothing happens

    gone = threading.Thread(target=lambda: None)
    gone.start()
    gone.join()
    stop.main_thread = gone  # as when SystemExit unwound the main thread of a running worker
    assert ending.called.wait(timeout=30)
    assert handlers.calls == []


def test_a_completed_stop_is_left_to_exit_on_its_own(handlers: DramatiqHandler) -> None:
    stop, ending = graceful_stop(timeout_ms=600_000, margin_s=5.0)
    stop.after_process_boot(None)  # type: ignore[arg-type]
    stop.after_worker_boot(None, None)  # type: ignore[arg-type]
    signal.raise_signal(signal.SIGTERM)
    stop.after_worker_shutdown(None, None)  # type: ignore[arg-type]
    gone = threading.Thread(target=lambda: None)
    gone.start()
    gone.join()
    stop.main_thread = gone  # the main thread returned after the stop: the normal way out
    assert not ending.called.wait(timeout=1.2)
    stop.overdue_after_s = 0  # a process still there past the deadline is ended all the same
    assert ending.called.wait(timeout=30)


def test_outside_dramatiq_s_worker_process_nothing_is_wrapped() -> None:
    stop, ending = graceful_stop(timeout_ms=0, margin_s=0.0)
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        stop.after_process_boot(None)  # type: ignore[arg-type]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not ending.called.wait(timeout=0.6)  # no watchdog either


def test_the_procfile_passes_the_setting_s_default_to_dramatiq() -> None:
    procfile = (Path(__file__).resolve().parents[2] / "Procfile").read_text()
    found = re.search(r"--worker-shutdown-timeout \$\{WORKER_SHUTDOWN_TIMEOUT_MS:-(\d+)\}", procfile)
    assert found is not None, "the Procfile's worker line must pass WORKER_SHUTDOWN_TIMEOUT_MS to dramatiq"
    assert int(found.group(1)) == Settings().worker_shutdown_timeout_ms


@pytest.fixture
def event_loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread, as dramatiq's AsyncIO middleware runs one."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_the_stop_gives_back_the_rows_no_batch_has_taken(
    event_loop_thread: asyncio.AbstractEventLoop,
) -> None:
    in_database = threading.Event()
    commit = threading.Event()
    applied: list[int] = []

    async def apply(import_id: int, rows: list[int]) -> tuple[dict[int, str], bool]:
        applied.extend(rows)
        in_database.set()
        while not commit.is_set():
            await asyncio.sleep(0.01)
        return {row: "created" for row in rows}, False

    handoff = RowHandoff(RowBatcher(apply, max_batch=2, max_flushes=1), event_loop_thread)
    previous = deferred._release_hook
    deferred.set_release_hook(handoff.release_waiting)
    try:
        futures = [handoff.submit(7, row) for row in range(1, 6)]
        assert in_database.wait(timeout=10)
        stop, _ = graceful_stop(timeout_ms=600_000, margin_s=5.0)
        stop.before_worker_shutdown(None, None)  # type: ignore[arg-type]
        commit.set()
        outcomes = [future.exception(timeout=10) or future.result() for future in futures]
    finally:
        deferred.set_release_hook(previous)  # type: ignore[arg-type]

    # The batch in the database (the first row, and the second if it came in
    # time) finishes; the rows waiting for the next one go back.
    assert applied in ([1], [1, 2])
    assert outcomes[: len(applied)] == [("created", False)] * len(applied)
    given_back = outcomes[len(applied) :]
    assert [type(outcome) for outcome in given_back] == [deferred.GivenBack] * (5 - len(applied))
    stop.before_worker_shutdown(None, None)  # type: ignore[arg-type]  # again: nothing left to give back
