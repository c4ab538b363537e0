"""Fixtures shared by several integration modules.

``drill_database`` is a database of the module's own (named after it), apart
from the session's, for the drills (``test_faults*.py``); ``dconn`` is a
connection to it. ``browser`` is Debian's headless Chromium driven by
Playwright, for the pages' tests (``test_*_browser.py``): Playwright's own
browser downloads are never used. Without ``/usr/bin/chromium`` those tests
skip locally and fail in CI, whose ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.db import connect
from tests.support.drills import shared_server_database
from tests.support.environment import SERVER_URL, TEST_DATABASE


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


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (Debian's), closed after the test."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI must install it (see .ci/run)")
        pytest.skip(reason)
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
