"""``local_services``: configured URLs pass through; embedded servers work, then vanish.

This machine may run real PostgreSQL and Redis on the default ports, so the embedded
path is forced (``force_embedded``) or reached through defaults pointing at a closed port.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
import redis

from core.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
from producer.demo.embedded import local_services, port_answers

REPO = Path(__file__).resolve().parents[2]
# Holds embedded servers open, reports their pids, then waits to be killed.
HOLD_SERVERS = """
import json, sys, time
from pathlib import Path
import psutil
from producer.demo.embedded import local_services
from core.logs import configure_logging
from core.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL
configure_logging()  # log lines to stderr, leaving stdout to the report
with local_services(None, None, default_database_url=DEFAULT_DATABASE_URL,
                    default_redis_url=DEFAULT_REDIS_URL, force_embedded=True,
                    workdir=Path(sys.argv[1])) as urls:
    pids = [p.pid for p in psutil.Process().children(recursive=True)]
    print(json.dumps({"pids": pids, "urls": [urls.database_url, urls.redis_url]}), flush=True)
    time.sleep(600)
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch parent that ``nobody`` can traverse (pytest's ``tmp_path`` is 0700 under root)."""
    with tempfile.TemporaryDirectory() as path:
        Path(path).chmod(0o755)
        yield Path(path)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on a port that nothing listens on (bound then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def _exercise_postgres(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select 1") == 1
        await conn.execute("create table people (id bigint primary key, email text not null)")
        await conn.execute("insert into people values (1, 'ada@example.com')")
        assert await conn.fetchval("select email from people where id = 1") == "ada@example.com"
        database: str = await conn.fetchval("select current_database()")
        return database
    finally:
        await conn.close()


def test_force_embedded_starts_working_servers_and_removes_them(workdir: Path) -> None:
    with local_services(
        None,
        None,
        default_database_url=DEFAULT_DATABASE_URL,
        default_redis_url=DEFAULT_REDIS_URL,
        force_embedded=True,
        workdir=workdir,
    ) as urls:
        assert urls.embedded == ("postgresql", "redis")
        assert urlsplit(urls.database_url).port != 5432
        assert urlsplit(urls.redis_url).port != 6379
        # Only the servers: the test session may have other children (a worker).
        servers = [
            p for p in psutil.Process().children(recursive=True) if p.name() in {"postgres", "redis-server"}
        ]
        assert {p.name() for p in servers} == {"postgres", "redis-server"}
        if os.geteuid() == 0:
            # PostgreSQL refuses root: it runs as nobody, from a copy in the scratch
            # directory, since nobody may not reach the virtualenv (issue 29).
            postmaster = next(p for p in servers if p.name() == "postgres")
            assert postmaster.username() == "nobody"
            assert Path(postmaster.exe()).is_relative_to(workdir)

        assert asyncio.run(_exercise_postgres(urls.database_url)) == "bulk_import"
        client = redis.Redis.from_url(urls.redis_url)
        try:
            assert client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
            # No persistence: nothing may be written beside the demo's data.
            assert client.config_get("save") == {"save": ""}
            assert client.config_get("appendonly") == {"appendonly": "no"}
        finally:
            client.close()

    assert not port_answers(urls.database_url)
    assert not port_answers(urls.redis_url)
    _, alive = psutil.wait_procs(servers, timeout=5)
    assert alive == []
    assert list(workdir.iterdir()) == []


def test_configured_urls_are_returned_untouched() -> None:
    database_url = "postgresql://app:secret@db.example.invalid:6543/people?sslmode=require"
    redis_url = "rediss://:token@cache.example.invalid:6380/3"
    with local_services(
        database_url,
        redis_url,
        default_database_url=DEFAULT_DATABASE_URL,
        default_redis_url=DEFAULT_REDIS_URL,
    ) as urls:
        assert urls.database_url == database_url
        assert urls.redis_url == redis_url
        assert urls.embedded == ()


def test_a_default_that_answers_is_used() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        answering = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        with local_services(
            "postgresql://configured.invalid/x",
            None,
            default_database_url=DEFAULT_DATABASE_URL,
            default_redis_url=answering,
        ) as urls:
            assert urls.redis_url == answering
            assert urls.embedded == ()


def test_a_silent_default_is_replaced_by_an_embedded_server(closed_port_url: str, workdir: Path) -> None:
    with local_services(
        "postgresql://configured.invalid/x",
        None,
        default_database_url=DEFAULT_DATABASE_URL,
        default_redis_url=closed_port_url,
        workdir=workdir,
    ) as urls:
        assert urls.embedded == ("redis",)
        client = redis.Redis.from_url(urls.redis_url)
        try:
            assert client.ping()
        finally:
            client.close()
    assert not port_answers(urls.redis_url)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_servers_die_with_a_process_killed_outright(workdir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SERVERS, str(workdir)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None
        report = json.loads(holder.stdout.readline())
        servers = [psutil.Process(pid) for pid in report["pids"]]
        assert servers
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()

    _, alive = psutil.wait_procs(servers, timeout=10)
    assert alive == []
    assert not any(port_answers(url) for url in report["urls"])
