"""Shared fixtures: real PostgreSQL and Redis, a migrated database per test
session, the session's SMTP server, and the real worker and web processes
started from the Procfile's own lines.

Only fixtures live here. The helpers they are built from, and which test
modules import, live in ``tests.support`` (see its ``__init__``): test modules
never import this file. A service that does not answer skips the tests that
need it locally, and fails them in CI (``CI=true``), where a skip would hide a
broken setup.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

# First: sets the environment every process of the run reads, before any
# project module is imported (the fixtures import them lazily).
from tests.support.environment import (
    SERVER_URL,
    SMTP_PORT,
    TEST_BROKER,
    TEST_BROKER_URL,
    TEST_DATABASE,
    TEST_DATABASE_URL,
    TEST_RABBITMQ_VHOST,
    TEST_REDIS_NAMESPACE,
    TEST_REDIS_URL,
)
from tests.support.services import (
    ROOT,
    MailServer,
    WorkerProcess,
    free_port,
    procfile_command,
    rabbitmq_vhost,
    require_service,
    subprocess_env,
    wait_until,
)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A freshly migrated database for this test session, dropped at the end."""
    require_service(SERVER_URL, "PostgreSQL")
    import asyncpg

    import schema
    from core.db import connection

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
def broker_url() -> Iterator[str]:
    """The run's broker (TEST_BROKER): on RabbitMQ, a virtual host of its own, made and deleted here."""
    if TEST_BROKER != "rabbitmq":
        yield TEST_BROKER_URL
        return
    require_service(TEST_BROKER_URL, "RabbitMQ")
    rabbitmq_vhost("add_vhost")
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", TEST_RABBITMQ_VHOST, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    yield TEST_BROKER_URL
    rabbitmq_vhost("delete_vhost")


@pytest.fixture(scope="session")
def redis_url(broker_url: str) -> Iterator[str]:
    """The test Redis, with this session's namespace emptied before and after (and the run's broker)."""
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
    from core.db import connect

    connection = await connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for each test, so tests never see each other's people."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def worker(database_url: str, redis_url: str, smtp_server: MailServer) -> Iterator[WorkerProcess]:
    """The real worker (Procfile line), shared by the session's tests."""
    # Four messages in hand at a time: since a row no longer holds a thread
    # (core.queues.deferred), the prefetch, not the threads, sets the pace,
    # and the pages' tests need an import that lasts a few refreshes.
    process = WorkerProcess(WORKER_PROCESSES="1", WORKER_THREADS="4", WORKER_PREFETCH="4")
    process.log_path.write_bytes(b"")
    process.start()
    yield process
    process.stop()


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

    port = free_port()
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
