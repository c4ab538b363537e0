"""The README's demo command, run as a newcomer would: on embedded services."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.services import free_port, subprocess_env


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())


def test_demo_imports_on_embedded_services(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        pytest.skip("pgserver (the demo extra) is not installed")
    if os.geteuid() == 0 and not _world_traversable(Path(spec.origin).parent):
        # As root, embedded PostgreSQL runs as 'nobody', who must reach its binaries.
        pytest.skip(f"'nobody' cannot reach {Path(spec.origin).parent}")
    env = subprocess_env()
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_NAMESPACE"):
        env.pop(name, None)
    workdir = tmp_path / "demo"

    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "bulk-import"),
            "demo",
            "--rows",
            "150",
            "--embedded",
            "--workdir",
            str(workdir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "embedded: postgresql, redis" in result.stdout
    summaries = re.findall(
        r"state (\w+): (\d+) rows, (\d+) created, (\d+) updated, (\d+) unchanged,"
        r" (\d+) invalid, (\d+) deactivated",
        result.stdout,
    )
    assert summaries == [
        ("done", "150", "150", "0", "0", "0", "0"),
        ("done", "150", "0", "0", "150", "0", "0"),
        ("done", "147", "0", "0", "147", "0", "3"),
    ]
    assert (workdir / "people.csv").exists()
    assert re.search(r"Admin token of demo-[\d-]+: bi_[\w-]{43}\n", result.stdout)
    assert "Traceback" not in result.stderr


@pytest.mark.usefixtures("database_url", "redis_url")
def test_demo_serve_keeps_the_admin_pages_up_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "bulk-import"),
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
