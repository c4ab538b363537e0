"""Scheduled sources against real servers on loopback: asyncssh's SFTP server and an HTTPS
server with the session's test CA (``tests.support.sources``), a clock the tests move.

The clock is years ahead of the real one, so the session worker's own
housekeeping (real time) never claims these tests' ticks nor attempts their runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.db import connect
from core.errors import SourceNotFound, SourceRefused
from core.intake.options import ImportOptions
from core.settings import get_settings
from core.sources import runs, store, ticks
from core.sources.fetched import FetchFailed
from core.sources.run import attempt_run
from core.sources.store import HostKeyToConfirm, NewSource
from core.sources.vault import Secrets
from core.tenants import set_tenant
from core.webhooks import endpoints
from producer.reports import import_status
from producer.webhooks import events_after
from tests.support.environment import TEST_CA
from tests.support.imports import person, wait_final, write_csv
from tests.support.receiver import Receiver, receiving
from tests.support.sources import HttpsServer, SftpServer

T0 = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)  # 14:00 in Paris


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exits:
        yield exits


async def wait_for(predicate: Any, what: str) -> Any:
    for _ in range(300):
        if value := predicate():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {what} within 30 s")


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    server = SftpServer(tmp_path / "sftp")
    (tmp_path / "sftp").mkdir()
    server.start()
    yield server
    server.close()


def csv_text(tmp_path: Path, rows: list[list[str]], name: str = "people.csv") -> str:
    return write_csv(tmp_path / name, rows).read_text()


PEOPLE = [
    person("Ada", "Lovelace", "ada@example.com", "Eng", "manager"),
    person("Bob", "Byte", "bob@example.com", "Eng"),
]


async def sftp_source(conn: Any, tenant: str, sftp: SftpServer, **changes: Any) -> dict[str, Any]:
    await set_tenant(conn, tenant, None, "Europe/Paris", None)
    new = NewSource(
        tenant=tenant,
        name="Workday nightly",
        url=sftp.url("exports/people-*.csv"),
        secrets=Secrets(password=sftp.password),
        host_key=sftp.fingerprint,
        schedule="0 3 * * *",
    )
    return await store.add_source(conn, dataclasses.replace(new, **changes), get_settings(), T0)


async def run_of(conn: Any, run_id: int) -> dict[str, Any]:
    return await runs.get_run(conn, run_id, None)


async def claimed(conn: Any, tenant: str, now: datetime) -> list[int]:
    """The runs the ticks due at ``now`` made for the tenant (the session's other tests have sources too)."""
    made = await ticks.claim_due_ticks(conn, now)
    return [r for r in made if (await run_of(conn, r))["tenant"] == tenant]


async def test_an_sftp_source_pins_the_host_key_logs_in_by_password_or_key_and_refuses_another_key(
    conn: Any, tenant: str, sftp: SftpServer, tmp_path: Path
) -> None:
    await set_tenant(conn, tenant, None, "Europe/Paris", None)
    sftp.drop("exports/people-1.csv", csv_text(tmp_path, PEOPLE), age_s=60)
    base = NewSource(
        tenant=tenant, name="hr", url=sftp.url("exports/people-*.csv"), secrets=Secrets(password="x")
    )
    # Without a confirmed key nothing is saved, and the fingerprint is what to confirm.
    with pytest.raises(HostKeyToConfirm) as shown:
        await store.add_source(conn, base, get_settings(), T0)
    assert shown.value.fingerprint == sftp.fingerprint
    with pytest.raises(SourceRefused, match="presents the host key"):
        await store.add_source(
            conn, dataclasses.replace(base, host_key="SHA256:" + "A" * 43), get_settings(), T0
        )
    assert await store.list_sources(conn, tenant) == []

    by_password = await sftp_source(conn, tenant, sftp)
    assert by_password["host_key"] == sftp.fingerprint and by_password["has_secret"]
    assert "secret" not in by_password and sftp.password not in str(by_password)
    found = await store.test_source(conn, tenant, by_password["id"], get_settings())
    assert "exports/people-1.csv" in found and sftp.fingerprint in found

    by_key = await sftp_source(
        conn, tenant, sftp, name="by key", secrets=Secrets(private_key=sftp.private_key_text())
    )
    assert "logged in" in await store.test_source(conn, tenant, by_key["id"], get_settings())
    wrong = await sftp_source(conn, tenant, sftp, name="wrong", secrets=Secrets(password="nope"))
    with pytest.raises(SourceRefused, match="refused the login"):
        await store.test_source(conn, tenant, wrong["id"], get_settings())

    # The server comes back with another host key: refused, and a run fails at once, importing nothing.
    sftp.stop()
    sftp.host_key = __import__("asyncssh").generate_private_key("ssh-ed25519")
    sftp.start()
    with pytest.raises(SourceRefused, match="other than the one pinned"):
        await store.test_source(conn, tenant, by_password["id"], get_settings())
    run_id, _ = await runs.request_run(conn, tenant, by_password["id"], T0)
    attempted = await attempt_run(get_settings(), run_id, now=T0)
    run = await run_of(conn, run_id)
    assert attempted.next_at is None and run["outcome"] == "failed" and run["attempts"] == 1
    assert "other than the one pinned" in run["reason"] and run["import_id"] is None


async def test_the_nightly_tick_imports_the_newest_file_and_the_same_file_again_is_unchanged(
    conn: Any, tenant: str, sftp: SftpServer, tmp_path: Path, worker: Any
) -> None:
    sftp.drop("exports/people-old.csv", csv_text(tmp_path, PEOPLE[:1]), age_s=3600)
    sftp.drop("exports/people-new.csv", csv_text(tmp_path, PEOPLE), age_s=60)
    source = await sftp_source(conn, tenant, sftp)
    tick = datetime.fromisoformat(source["next_run_at"])
    assert tick == datetime(2031, 6, 2, 1, 0, tzinfo=UTC)  # 03:00 in Paris (summer time)

    assert await claimed(conn, tenant, tick - timedelta(seconds=1)) == []
    (run_id,) = await claimed(conn, tenant, tick + timedelta(seconds=5))
    assert await claimed(conn, tenant, tick + timedelta(seconds=6)) == []  # the tick has its run

    attempted = await attempt_run(get_settings(), run_id, now=tick + timedelta(seconds=6))
    assert attempted.outcome == "imported" and attempted.import_id is not None
    done = await wait_final(conn, attempted.import_id)
    assert done["state"] == "done" and done["rows"]["created"] == 2
    assert done["source"] == {"id": source["id"], "name": "Workday nightly"}
    assert done["file"] == "people-new.csv"
    shown = await store.get_source(conn, tenant, source["id"])
    assert shown["last_run"]["outcome"] == "imported" and shown["last_run"]["file"] == "people-new.csv"
    assert datetime.fromisoformat(shown["next_run_at"]) == tick + timedelta(days=1)

    # The next night the same file is there: skipped, recorded as unchanged.
    (again,) = await claimed(conn, tenant, tick + timedelta(days=1, seconds=1))
    assert (
        await attempt_run(get_settings(), again, now=tick + timedelta(days=1, seconds=2))
    ).outcome == "unchanged"
    assert (await run_of(conn, again))["import_id"] is None


async def test_a_file_with_a_broken_column_blocks_the_run_and_notifies_the_tenants_webhook(
    conn: Any, tenant: str, sftp: SftpServer, tmp_path: Path, worker: Any, stack: ExitStack
) -> None:
    receiver = Receiver()
    stack.enter_context(receiving(receiver))
    await set_tenant(conn, tenant, None, "Europe/Paris", None)
    new = await endpoints.add_endpoint(conn, tenant, receiver.url, ["import.blocked"], allow_loopback=True)
    receiver.secrets = [new.secret]
    header = ["First name", "Last name", "Work contact", "Primary team"]
    sftp.drop(
        "exports/people-1.csv",
        write_csv(tmp_path / "b.csv", [["Ada", "L", "ada@example.com", "Eng"]], header).read_text(),
    )
    source = await sftp_source(conn, tenant, sftp)
    run_id, created = await runs.request_run(conn, tenant, source["id"], T0)
    assert created and (await runs.request_run(conn, tenant, source["id"], T0)) == (run_id, False)
    attempted = await attempt_run(get_settings(), run_id, now=T0)
    run = await run_of(conn, run_id)
    assert attempted.outcome == "blocked" and run["import_id"] is None
    assert run["reason"].startswith("people-1.csv: the file has no column for 'Email'")
    assert await conn.fetchval("SELECT count(*) FROM imports WHERE tenant_id = $1", tenant) == 0
    event = await conn.fetchrow("SELECT type, payload FROM webhook_events WHERE source_run_id = $1", run_id)
    assert event["type"] == "import.blocked" and event["payload"]["data"]["import"] is None
    assert event["payload"]["data"]["source_run"]["reason"] == run["reason"]
    # The tenant's webhook heard it, signed (the worker delivers it), and the feed lists it.
    (delivered,) = await wait_for(lambda: receiver.delivered(), "the import.blocked delivery")
    assert receiver.bad_signatures == 0 and delivered.event == event["payload"]
    feed = await events_after(conn, tenant, 0, 10)
    assert [e["type"] for e in feed["events"]] == ["import.blocked"]


async def test_a_sync_that_would_trip_the_sweep_guard_blocks_deactivating_nobody_until_approved(
    conn: Any, tenant: str, sftp: SftpServer, tmp_path: Path, worker: Any
) -> None:
    everyone = [person(f"P{i}", "X", f"p{i}@example.com", "Eng") for i in range(4)]
    sftp.drop("exports/people-1.csv", csv_text(tmp_path, everyone), age_s=120)
    source = await sftp_source(conn, tenant, sftp, options=ImportOptions(mode="sync"))
    first, _ = await runs.request_run(conn, tenant, source["id"], T0)
    assert (await wait_final(conn, (await attempt_run(get_settings(), first, now=T0)).import_id or 0))[
        "state"
    ] == "done"

    sftp.drop("exports/people-2.csv", csv_text(tmp_path, everyone[:1], "one.csv"))
    blocked, _ = await runs.request_run(conn, tenant, source["id"], T0)
    assert (await attempt_run(get_settings(), blocked, now=T0)).outcome == "blocked"
    run = await run_of(conn, blocked)
    assert run["would_deactivate"] == 3 and "would deactivate 3 of 4 active people (75%)" in run["reason"]
    active = "SELECT count(*) FROM people WHERE tenant_id = $1 AND status = 'active'"
    assert await conn.fetchval(active, tenant) == 4

    approved, _ = await runs.approve_run(conn, tenant, blocked, T0)
    attempted = await attempt_run(get_settings(), approved, now=T0)
    assert attempted.outcome == "imported"
    assert (await wait_final(conn, attempted.import_id or 0))["deactivated"] == 3


async def test_a_server_down_is_retried_with_backoff_then_imports_once_it_is_back_or_fails(
    conn: Any, tenant: str, sftp: SftpServer, tmp_path: Path
) -> None:
    sftp.drop("exports/people-1.csv", csv_text(tmp_path, PEOPLE))
    source = await sftp_source(conn, tenant, sftp)
    sftp.stop()
    run_id, _ = await runs.request_run(conn, tenant, source["id"], T0)
    first = await attempt_run(get_settings(), run_id, now=T0)
    assert first.outcome is None and first.next_at == T0 + timedelta(seconds=0.2)
    assert "could not be reached" in (await run_of(conn, run_id))["reason"]
    early = await attempt_run(get_settings(), run_id, now=T0 + timedelta(seconds=0.1))
    assert early == dataclasses.replace(early, outcome=None, next_at=first.next_at)
    sftp.start()
    back = await attempt_run(get_settings(), run_id, now=T0 + timedelta(seconds=1))
    assert back.outcome == "imported" and (await run_of(conn, run_id))["attempts"] == 2

    # Down for good: after SOURCE_MAX_ATTEMPTS (3) the run failed and says so; import.failed recorded.
    sftp.drop("exports/people-2.csv", csv_text(tmp_path, PEOPLE[:1], "p2.csv"))
    sftp.stop()
    failing, _ = await runs.request_run(conn, tenant, source["id"], T0 + timedelta(seconds=2))
    now = T0 + timedelta(seconds=2)
    for _ in range(3):
        attempted = await attempt_run(get_settings(), failing, now=now)
        now = attempted.next_at or now
    run = await run_of(conn, failing)
    assert run["outcome"] == "failed" and "gave up after 3 attempts" in run["reason"]
    assert (
        await conn.fetchval("SELECT type FROM webhook_events WHERE source_run_id = $1", failing)
        == "import.failed"
    )


async def test_two_workers_claiming_the_same_tick_at_once_make_one_run(
    database_url: str, conn: Any, tenant: str, sftp: SftpServer
) -> None:
    sources = [
        (await sftp_source(conn, tenant, sftp, name=f"s{i}", schedule="every 6 hours"))["id"]
        for i in range(5)
    ]
    due = T0 + timedelta(hours=6, seconds=1)
    others = [await connect(database_url) for _ in range(3)]
    try:
        claimed_by = await asyncio.gather(*(ticks.claim_due_ticks(c, due) for c in [conn, *others]))
    finally:
        for other in others:
            await other.close()
    made = [run for runs_made in claimed_by for run in runs_made]
    assert len(made) == len(set(made))
    mine = "SELECT id FROM source_runs WHERE source_id = ANY($1::bigint[])"
    assert {r["id"] for r in await conn.fetch(mine, sources)} <= set(made)
    count = "SELECT count(*) FROM source_runs WHERE source_id = ANY($1::bigint[])"
    assert await conn.fetchval(count, sources) == 5


async def test_ticks_missed_while_everything_was_down_run_once(
    conn: Any, tenant: str, sftp: SftpServer
) -> None:
    source = await sftp_source(conn, tenant, sftp, schedule="every 1 hours")
    ten_hours_later = T0 + timedelta(hours=10, minutes=30)
    assert len(await claimed(conn, tenant, ten_hours_later)) == 1
    shown = await store.get_source(conn, tenant, source["id"])
    assert datetime.fromisoformat(shown["next_run_at"]) == T0 + timedelta(hours=11)
    # Paused: no tick at all; resumed: from the next one after now.
    await store.pause_source(conn, tenant, source["id"], ten_hours_later)
    assert await claimed(conn, tenant, T0 + timedelta(hours=30)) == []
    await store.resume_source(conn, tenant, source["id"], T0 + timedelta(hours=30, minutes=10))
    assert (await store.get_source(conn, tenant, source["id"]))["next_run_at"] == (
        T0 + timedelta(hours=31)
    ).isoformat()


async def test_a_source_of_one_tenant_never_reaches_another(conn: Any, tenant: str, sftp: SftpServer) -> None:
    source = await sftp_source(conn, tenant, sftp)
    other = tenant + "-b"
    await set_tenant(conn, other, None, None, None)
    with pytest.raises(SourceNotFound):
        await store.get_source(conn, other, source["id"])
    with pytest.raises(SourceNotFound):
        await runs.request_run(conn, other, source["id"], T0)
    with pytest.raises(SourceNotFound):
        await store.pause_source(conn, other, source["id"], T0)
    assert await store.list_sources(conn, other) == []
    # And whatever the code says, the schema refuses a run or an import across tenants.
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await conn.execute(
            "INSERT INTO source_runs (source_id, tenant_id) VALUES ($1, $2)", source["id"], other
        )


async def test_an_https_source_fetches_through_the_test_ca_with_its_header(
    conn: Any, tenant: str, tmp_path: Path
) -> None:
    server = HttpsServer(TEST_CA, header=("Authorization", "Bearer s3cret"))
    try:
        server.files["/export/people.csv"] = csv_text(tmp_path, PEOPLE).encode()
        await set_tenant(conn, tenant, None, None, None)
        new = NewSource(
            tenant=tenant,
            name="bamboo",
            url=server.url("/export/people.csv"),
            header_name="Authorization",
            secrets=Secrets(header_value="Bearer s3cret"),
        )
        source = await store.add_source(conn, new, get_settings(), T0)
        assert (
            source["schedule"] is None
            and source["next_run_at"] is None
            and source["header"] == "Authorization"
        )
        assert "answered 200" in await store.test_source(conn, tenant, source["id"], get_settings())
        run_id, _ = await runs.request_run(conn, tenant, source["id"], T0)
        attempted = await attempt_run(get_settings(), run_id, now=T0)
        assert attempted.outcome == "imported"
        status = await import_status(conn, attempted.import_id or 0)
        assert status["file"] == "people.csv" and status["tenant"] == tenant

        wrong = await store.add_source(
            conn,
            dataclasses.replace(new, name="wrong", secrets=Secrets(header_value="Bearer no")),
            get_settings(),
            T0,
        )
        with pytest.raises(SourceRefused, match="HTTP 401"):
            await store.test_source(conn, tenant, wrong["id"], get_settings())
        missing = await store.add_source(
            conn, dataclasses.replace(new, name="missing", url=server.url("/nothing.csv")), get_settings(), T0
        )
        with pytest.raises(FetchFailed, match="HTTP 404"):
            await store.test_source(conn, tenant, missing["id"], get_settings())
        strict = dataclasses.replace(get_settings(), source_allow_loopback=False)
        with pytest.raises(SourceRefused, match="loopback address"):
            await store.add_source(conn, dataclasses.replace(new, name="strict"), strict, T0)
        small = dataclasses.replace(get_settings(), api_max_upload_bytes=10)
        too_big, _ = await runs.request_run(conn, tenant, source["id"], T0)
        assert (await attempt_run(small, too_big, now=T0)).outcome == "failed"
        assert "over the" in (await run_of(conn, too_big))["reason"]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/people.csv", "not a source's URL"),
        ("sftp://host/people.csv", "names no user"),
        ("sftp://u:pw@host/people.csv", "carries a password"),
        ("sftp://u@host/exports/", "names a folder"),
        ("https://u@example.com/x.csv", "user name"),
    ],
)
async def test_a_source_url_is_checked_before_anything_is_saved(
    conn: Any, tenant: str, url: str, reason: str
) -> None:
    await set_tenant(conn, tenant, None, None, None)
    new = NewSource(tenant=tenant, name="x", url=url, secrets=Secrets(password="p"))
    with pytest.raises(SourceRefused, match=reason):
        await store.add_source(conn, new, get_settings(), T0)
