"""The README's demo command, run as a newcomer would: on embedded services."""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import subprocess_env


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
    assert "Traceback" not in result.stderr
