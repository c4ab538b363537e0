"""Running producer work off the web process's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a thread and event loop of its own.

    For producer work that is CPU-heavy (reading and checking a file) or sends
    many messages (cancel, resume, send invites): one large request must not
    stall the others. The work opens its own connections on that loop.
    """
    return await asyncio.to_thread(asyncio.run, coro)
