"""The sources' rules that need no service: schedules (cron in a timezone across daylight saving,
every N hours, never catching up), URLs, and the secrets' sealing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import BulkImportError, ConfigurationError, SourceRefused
from core.sources.locations import parse_location
from core.sources.schedule import check_schedule, next_tick
from core.sources.vault import Secrets, new_key, seal, unseal
from core.vocabulary import SourceKind


def test_a_cron_schedule_ticks_in_the_tenants_timezone_across_daylight_saving() -> None:
    # Paris moves to summer time on 2031-03-30: 03:00 local is 02:00 UTC before, 01:00 UTC after.
    before = datetime(2031, 3, 29, 12, 0, tzinfo=UTC)
    assert next_tick("0 3 * * *", "Europe/Paris", before, before) == datetime(2031, 3, 30, 1, 0, tzinfo=UTC)
    winter = datetime(2031, 1, 10, 12, 0, tzinfo=UTC)
    assert next_tick("0 3 * * *", "Europe/Paris", winter, winter) == datetime(2031, 1, 11, 2, 0, tzinfo=UTC)
    assert next_tick(None, "UTC", winter, winter) is None


@given(st.integers(1, 48), st.integers(0, 10_000_000))
def test_every_n_hours_ticks_from_when_it_was_saved_and_never_catches_up(hours: int, later_s: int) -> None:
    start = datetime(2031, 1, 1, 8, 17, tzinfo=UTC)
    now = start + timedelta(seconds=later_s)
    tick = next_tick(f"every {hours} hours", "UTC", start, now)
    assert tick is not None and now < tick <= now + timedelta(hours=hours)
    assert (tick - start) % timedelta(hours=hours) == timedelta(0)


@pytest.mark.parametrize(
    ("text", "tidy"), [("0  3 * * *", "0 3 * * *"), ("Every 6 Hours", "every 6 hours"), ("", None)]
)
def test_a_schedule_is_tidied(text: str, tidy: str | None) -> None:
    assert check_schedule(text) == tidy


@pytest.mark.parametrize("text", ["0 3 * *", "61 * * * *", "every 0 hours", "nightly"])
def test_a_schedule_that_is_none_says_what_one_looks_like(text: str) -> None:
    with pytest.raises(BulkImportError, match="schedule"):
        check_schedule(text)


def test_a_url_splits_into_what_the_fetchers_need() -> None:
    sftp = parse_location("sftp://hr%40acme@sftp.example.com:2222/exports/people-*.csv")
    assert (sftp.kind, sftp.user, sftp.host, sftp.port) == (
        SourceKind.SFTP,
        "hr@acme",
        "sftp.example.com",
        2222,
    )
    assert (sftp.folder, sftp.pattern, sftp.is_glob) == ("/exports", "people-*.csv", True)
    home = parse_location("sftp://hr@h/~/people.csv")
    assert (home.path, home.folder, home.is_glob, home.port) == ("people.csv", ".", False, 22)
    https = parse_location("https://hr.example.com/export.csv?format=csv")
    assert (https.kind, https.port, https.user) == (SourceKind.HTTPS, 443, None)
    with pytest.raises(SourceRefused, match="carries a password"):
        parse_location("sftp://hr:hunter2@h/p.csv")


def test_secrets_are_sealed_and_need_the_key_they_were_sealed_with() -> None:
    key, other = new_key(), new_key()
    secrets = Secrets(password="hunter2", header_value=None)
    sealed = seal(secrets, key)
    assert sealed is not None and "hunter2" not in sealed and "hunter2" not in repr(secrets)
    assert unseal(sealed, key) == secrets
    assert unseal(sealed, f"{other},{key}") == secrets  # rotation: a new key first, the old one still reads
    with pytest.raises(ConfigurationError, match="does not decrypt"):
        unseal(sealed, other)
    with pytest.raises(ConfigurationError, match="SOURCE_SECRET_KEY is not set"):
        seal(secrets, "")
    assert seal(Secrets(), "") is None  # nothing secret: no key needed
