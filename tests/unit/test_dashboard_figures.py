"""The dashboard's figures: progress, rate and ETA, and how they are written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from producer.web.overview import progress
from producer.web.pages import duration, when

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def counts(state: str, started_s_ago: float | None, **outcomes: int) -> dict[str, Any]:
    row = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    row.update(outcomes)
    started = None if started_s_ago is None else NOW - timedelta(seconds=started_s_ago)
    return {"state": state, "total_rows": 1_010, "invalid_rows": 10, "started_at": started, **row}


def test_a_running_import_has_an_average_rate_and_an_eta() -> None:
    figures = progress(counts("running", 20, created=300, updated=80, failed=20), NOW)

    assert figures == {
        "valid": 1_000,
        "settled": 400,
        "pending": 600,
        "percent": 40.0,
        "rate": 20.0,
        "eta_seconds": 30,
    }


def test_no_rate_or_eta_unless_running_and_settling() -> None:
    assert progress(counts("queued", None), NOW)["rate"] is None
    just_started = progress(counts("running", 3), NOW)
    assert (just_started["rate"], just_started["eta_seconds"]) == (0.0, None)
    done = progress(counts("done", 50, created=1_000), NOW)
    assert (done["percent"], done["rate"], done["eta_seconds"]) == (100.0, None, None)


def test_a_file_of_invalid_rows_only_is_complete() -> None:
    nothing_valid = counts("done", 5) | {"total_rows": 10, "invalid_rows": 10}
    assert progress(nothing_valid, NOW)["percent"] == 100.0


def test_durations_and_times_read_well() -> None:
    assert [duration(s) for s in (None, 0, 59, 95, 3_600, 7_380)] == [
        "–",
        "0 s",
        "59 s",
        "1 m 35 s",
        "1 h 0 m",
        "2 h 3 m",
    ]
    assert when(None) == "–"
    assert when("2026-11-27T13:05:09+01:00") == "2026-11-27 12:05 UTC"
