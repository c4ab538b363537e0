"""Fixtures shared by the drill modules (``test_faults*.py``).

``drill_database`` is a database of the module's own (named after it), apart
from the session's; ``dconn`` is a connection to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.drills import shared_server_database
from tests.support.environment import SERVER_URL, TEST_DATABASE
from worker.db import connect


@pytest.fixture(scope="module")
def drill_database(request: pytest.FixtureRequest, database_url: str) -> Iterator[str]:
    """A migrated database for this module's drills, dropped after them."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with shared_server_database(SERVER_URL, f"{TEST_DATABASE}_{module}") as url:
        yield url


@pytest.fixture
async def dconn(drill_database: str) -> AsyncIterator[Any]:
    """A connection to the module's drill database."""
    conn = await connect(drill_database)
    yield conn
    await conn.close()
