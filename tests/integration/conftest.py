"""Fixtures shared by the drill modules (``test_faults*.py``).

Each drill module defines ``drill_database``, the database of its own its
drills run in; ``dconn`` is a connection to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from worker.db import connect


@pytest.fixture
async def dconn(drill_database: str) -> AsyncIterator[Any]:
    """A connection to the module's drill database."""
    conn = await connect(drill_database)
    yield conn
    await conn.close()
