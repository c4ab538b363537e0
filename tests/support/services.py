"""The services and processes tests run against, and how to wait for them.

``require_service`` skips (locally) or fails (in CI) a test whose service does
not answer; ``WorkerProcess`` runs the Procfile's ``worker:`` line;
``MailServer`` is the handler of the session's SMTP server; ``wait_until``
polls. Importing this module reads no settings and starts nothing.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nothing listens on (at the time of asking) on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


def rabbitmq_vhost(action: str, vhost: str | None = None) -> None:
    """``rabbitmqctl add_vhost`` or ``delete_vhost`` of the run's virtual host (or ``vhost``)."""
    from tests.support.environment import TEST_RABBITMQ_VHOST

    name = vhost or TEST_RABBITMQ_VHOST
    result = subprocess.run(["rabbitmqctl", "-q", action, name], capture_output=True, text=True)
    if result.returncode != 0 and "already exists" not in result.stderr + result.stdout:
        raise AssertionError(f"rabbitmqctl {action} {name}: {result.stderr or result.stdout}")


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

    def __init__(self, *, prefix: tuple[str, ...] = (), **env: str) -> None:
        self.env = subprocess_env(**env)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / ".pytest-worker.log"
        # Run the line under this command (``ip netns exec NS``: on another "host").
        self.prefix = prefix

    def start(self) -> None:
        """Start the worker and wait until it consumes."""
        self.spawn()
        wait_until(self._booted, timeout=60, what="the worker to boot")

    def spawn(self) -> None:
        """Start the worker without waiting for it to boot."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, "sh", "-c", "exec " + procfile_command("worker")],
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
