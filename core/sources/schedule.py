"""A source's schedule: a cron expression in the tenant's timezone, or "every N hours".

Cron expressions are croniter's (five fields, ``0 3 * * *`` = 03:00 every
day), read in the tenant's timezone, so "3 in the morning" stays 3 in the
morning across daylight saving changes. ``every N hours`` ticks every N hours
from the moment the schedule was saved. A schedule never catches up: the
next tick is always the first one after *now*, so a source whose ticks were
missed while everything was down runs once when the system is back, not once
per missed tick.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from core.errors import BulkImportError

_EVERY = re.compile(r"every\s+(\d{1,4})\s+hours?", re.IGNORECASE)
EXAMPLES = "a cron expression such as '0 3 * * *' (03:00 every day) or 'every 6 hours'"


def check_schedule(text: str | None) -> str | None:
    """The schedule tidied (None: runs only when asked); ``BulkImportError`` saying what one looks like."""
    if text is None or not text.strip():
        return None
    tidy = " ".join(text.split())
    every = _EVERY.fullmatch(tidy)
    if every:
        if not 1 <= int(every[1]) <= 24 * 31:
            raise BulkImportError(f"schedule {text!r}: every 1 to 744 hours")
        return f"every {int(every[1])} hours"
    if len(tidy.split()) != 5 or not croniter.is_valid(tidy):
        raise BulkImportError(f"schedule {text!r} is not a schedule: write {EXAMPLES}")
    return tidy


def next_tick(schedule: str | None, timezone: str, start: datetime, now: datetime) -> datetime | None:
    """The schedule's first tick after ``now`` (``start``: when it was saved); None without a schedule."""
    if schedule is None:
        return None
    every = _EVERY.fullmatch(schedule)
    if every:
        period = timedelta(hours=int(every[1]))
        passed = max(0, (now - start) // period + 1)
        return start + passed * period
    local = now.astimezone(ZoneInfo(timezone))
    tick: datetime = croniter(schedule, local).get_next(datetime)
    return tick
