"""Shared fixtures: real PostgreSQL and Redis, a migrated database per test
session, and the real worker started from the Procfile's own ``worker:`` line.

A service that does not answer skips the tests that need it locally, and fails
them in CI (``CI=true``), where a skip would hide a broken setup.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("TEST_DATABASE_SERVER_URL", "postgresql://127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DATABASE = f"bulk_import_test_{os.getpid()}"
TEST_DATABASE_URL = SERVER_URL.rsplit("/", 1)[0] + "/" + TEST_DATABASE

# Every process of the test run (this one, the CLI and worker subprocesses)
# reads its settings from the environment; point them at the test services
# before any project module builds its broker.
os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ["REDIS_URL"] = TEST_REDIS_URL
# A namespace of its own, so test runs side by side never see each other's queues.
TEST_REDIS_NAMESPACE = f"bulk-import-test-{os.getpid()}"
os.environ["REDIS_NAMESPACE"] = TEST_REDIS_NAMESPACE
os.environ.setdefault("LOG_FORMAT", "json")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# A real SMTP server (aiosmtpd) runs in this process for the session, on this port.
# Chosen once: tests importing helpers from this module execute it a second time.
SMTP_PORT = int(os.environ.setdefault("TEST_SMTP_PORT", str(_free_port())))
os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{SMTP_PORT}"
os.environ["INVITE_MIN_BACKOFF_MS"] = "200"
os.environ["HOUSEKEEPING_INTERVAL_S"] = "1"
os.environ["INVITE_RELEASE_GRACE_S"] = "2"
os.environ["ACCEPT_BASE_URL"] = "https://people.example.com/accept"
os.environ["HEARTBEAT_TIMEOUT_MS"] = "5000"
os.environ["ROW_MIN_BACKOFF_MS"] = "100"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=1):
            return True
    except OSError:
        return False


def require_service(url: str, name: str) -> None:
    """Skip (locally) or fail (in CI) when a service does not answer."""
    if _answers(url):
        return
    message = f"{name} does not answer at {url}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must start it: see .ci/run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A freshly migrated database for this test session, dropped at the end."""
    require_service(SERVER_URL, "PostgreSQL")
    import asyncpg

    import schema
    from worker.db import connection

    async def create() -> None:
        admin = await asyncpg.connect(SERVER_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{TEST_DATABASE}"')
        await admin.close()
        async with connection(TEST_DATABASE_URL) as conn:
            await schema.migrate(conn)

    async def drop() -> None:
        admin = await asyncpg.connect(SERVER_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)')
        await admin.close()

    asyncio.run(create())
    yield TEST_DATABASE_URL
    asyncio.run(drop())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis, with this session's namespace emptied before and after."""
    require_service(TEST_REDIS_URL, "Redis")
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)

    def clear() -> None:
        for key in client.scan_iter(match=TEST_REDIS_NAMESPACE + "*", count=1000):
            client.delete(key)

    clear()
    yield TEST_REDIS_URL
    clear()
    client.close()


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Any]:
    """A connection to the session's database."""
    from worker.db import connect

    connection = await connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for each test, so tests never see each other's people."""
    return f"t-{uuid.uuid4().hex[:12]}"


def procfile_command(process: str) -> str:
    """The command of one ``Procfile`` line, as an operator would run it."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise AssertionError(f"the Procfile has no {process}: line")


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment for project subprocesses: this venv's scripts first on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(overrides)
    return env


class WorkerProcess:
    """The Procfile's worker line running as a subprocess group."""

    def __init__(self, **env: str) -> None:
        self.env = subprocess_env(**env)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / ".pytest-worker.log"

    def start(self) -> None:
        """Start the worker and wait until it consumes."""
        self.spawn()
        wait_until(self._booted, timeout=60, what="the worker to boot")

    def spawn(self) -> None:
        """Start the worker without waiting for it to boot."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["sh", "-c", "exec " + procfile_command("worker")],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _booted(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}; see {self.log_path}")
        text = self.log_path.read_text(errors="replace")
        return text.count("worker.pool.opened") >= self._expected_boots

    @property
    def _expected_boots(self) -> int:
        before = getattr(self, "_boots_before", 0)
        return before + int(self.env.get("WORKER_PROCESSES", "2"))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the worker: SIGTERM to its main process is a graceful stop (the
        main process forwards it to each worker process; signalling the whole
        group is drilled in ``test_faults_stop``); SIGKILL to the whole group
        is a crash."""
        if self.process is None:
            return
        try:
            if sig == signal.SIGKILL:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
            raise AssertionError(
                f"the worker did not stop within 60s of {sig!r}; see {self.log_path}"
            ) from None
        except ProcessLookupError:
            pass
        finally:
            self.process = None

    def restart(self) -> None:
        """Start again after a stop, counting the boots already logged."""
        self._boots_before = self.log_path.read_text(errors="replace").count("worker.pool.opened")
        self.start()


def wait_until(predicate: Any, *, timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def worker(database_url: str, redis_url: str, smtp_server: MailServer) -> Iterator[WorkerProcess]:
    """The real worker (Procfile line), shared by the session's tests."""
    process = WorkerProcess(WORKER_PROCESSES="1", WORKER_THREADS="4")
    process.log_path.write_bytes(b"")
    process.start()
    yield process
    process.stop()


class MailServer:
    """What the test SMTP server received, and how it should answer next."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        # Codes to answer DATA with, in turn, before accepting again ("451 ...").
        self.refusals: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept a message, or refuse it with the next queued answer (aiosmtpd's hook)."""
        with self.lock:
            if self.refusals:
                return self.refusals.pop(0)
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        """Messages received for ``address``."""
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[MailServer]:
    """The session's SMTP server (the worker's SMTP_URL points at it)."""
    from aiosmtpd.controller import Controller

    handler = MailServer()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture
def web_server(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """The Procfile's web: line, serving on a free port; its output goes to ``tmp_path / "web.log"``."""
    import httpx

    port = _free_port()
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sh", "-c", "exec " + procfile_command("web")],
            cwd=ROOT,
            env=subprocess_env(PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, f"web exited with {process.returncode}; see {log_path}"
        try:
            return httpx.get(base + "/api/openapi.json", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=30, what="the web process to answer")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
