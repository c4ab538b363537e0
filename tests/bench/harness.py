"""The benchmark's plumbing: its names, the Procfile, subprocesses, and worker processes.

Shared by ``throughput.py`` (the measurements) and ``references.py`` (the stock
dramatiq anchor and the history import). Not a test module: pytest collects
nothing here.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
PID = os.getpid()
DB_NAME = f"bulk_import_bench_{PID}"
NAMESPACE = f"bulk-import-bench-{PID}"
DEFAULT_SERVER_URL = "postgresql://127.0.0.1:5432/postgres"
FINAL_FAILURES = ("failed", "cancelled", "blocked")


class BenchError(Exception):
    """A measurement that could not be carried out; the message says why."""


# --------------------------------------------------------------------------- setup


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


def server_url() -> str:
    """The ``postgres`` database on the server of DATABASE_URL (or the local default)."""
    configured = os.environ.get("DATABASE_URL")
    return with_database(configured, "postgres") if configured else DEFAULT_SERVER_URL


def procfile_command(process: str) -> str:
    """The command of one Procfile line, as an operator would run it."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise BenchError(f"the Procfile has no {process}: line")


def ceiling_command() -> str:
    """The Procfile's worker line with the no-op actor module and queue swapped in."""
    command = procfile_command("worker")
    if " worker.actors" not in command or "--queues" not in command:
        raise BenchError(f"cannot derive the no-op worker from the Procfile's worker line: {command!r}")
    command = command.replace(" worker.actors", " noop_actor")
    return re.sub(r"--queues(\s+[\w.-]+)+", "--queues bench_noop", command)


def subprocess_env(base: dict[str, str], **overrides: str) -> dict[str, str]:
    """Environment for the project's subprocesses: this venv's scripts, this checkout's code."""
    env = dict(base)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(BENCH_DIR), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.update(overrides)
    return env


def kib_to_mb(kib: int | float) -> float:
    return round(kib / 1024, 1)


def proc_status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` figure of /proc/<pid>/status (VmHWM: peak resident memory)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the dramatiq worker processes of a main process)."""
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            children.extend(int(c) for c in text)
    except OSError:
        pass
    return sorted(set(children))


# --------------------------------------------------------------------------- worker


def cpu_seconds(worker_pids: set[int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by PostgreSQL's processes, Redis's, and the given worker's.

    Every process of the machine named ``postgres`` counts (the backends of
    this run, and the server's own: WAL writer, checkpointer, autovacuum); a
    backend that exited between two readings is missed.
    """
    totals = {"worker": 0.0, "postgres": 0.0, "redis": 0.0}
    for proc in psutil.process_iter(["name"]):
        name = proc.info["name"] or ""
        kind = (
            "worker"
            if proc.pid in worker_pids
            else "postgres"
            if name.startswith("postgres")
            else "redis"
            if name.startswith("redis-server")
            else None
        )
        if kind is None:
            continue
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        totals[kind] += times.user + times.system
    return totals


@dataclass
class Worker:
    """A dramatiq worker command (a Procfile line) running as a process group of its own."""

    command: str
    env: dict[str, str]
    log_path: Path
    processes: int
    # A line each process logs once booted: our DatabasePool's (the stock anchor
    # passes dramatiq's own "Worker process is ready for action.").
    ready_marker: str = "worker.pool.opened"
    # How long the main process may take to stop after its one SIGTERM.
    stop_seconds: float = 60
    process: subprocess.Popen[bytes] | None = None
    boot_seconds: float = 0.0
    booted_at: float = 0.0  # time.monotonic() when the last process had opened its pool

    def start(self, timeout: float = 120) -> None:
        """Start the worker and wait until each of its processes has logged ``ready_marker``."""
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["sh", "-c", "exec " + self.command],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while self.log_path.read_text(errors="replace").count(self.ready_marker) < self.processes:
            if self.process.poll() is not None:
                raise BenchError(f"the worker exited with {self.process.returncode}; see {self.log_path}")
            if time.monotonic() - started > timeout:
                raise BenchError(f"the worker did not boot within {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.01)
        self.booted_at = time.monotonic()
        self.boot_seconds = self.booted_at - started

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def children(self) -> list[int]:
        return child_pids(self.pid) if self.process is not None else []

    def peak_rss_mb(self) -> tuple[float | None, float | None]:
        """(main process, largest worker process) peak resident memory, in MB."""
        if self.process is None:
            return None, None
        main = proc_status_kib(self.pid, "VmHWM")
        children = [k for k in (proc_status_kib(c, "VmHWM") for c in self.children()) if k is not None]
        return (
            kib_to_mb(main) if main is not None else None,
            kib_to_mb(max(children)) if children else None,
        )

    def stop(self) -> None:
        """SIGTERM to the main process only, once (it forwards it); SIGKILL the group if stuck.

        Once: a second SIGTERM reaching stock dramatiq 2.2.1 makes it hang.
        """
        if self.process is None:
            return
        process, self.process = self.process, None
        try:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=self.stop_seconds)
        except subprocess.TimeoutExpired:
            print(
                f"bench: the worker {process.pid} ignored SIGTERM for {self.stop_seconds:.0f}s:"
                " killing its group",
                file=sys.stderr,
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass
