"""Acceptance: the ``bulk-import`` command line, run as a user runs it.

Every test starts the real console script as a subprocess. The environment
(tests.support.environment) points DATABASE_URL and REDIS_URL at the test session's services;
the Procfile's worker (the ``worker`` fixture) processes the rows.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from core.columns import TEMPLATE_HEADERS
from producer.demo.sample import write_people_csv
from tests.support.drills import paused
from tests.support.environment import SERVER_URL, TEST_BROKER
from tests.support.imports import person, write_csv
from tests.support.services import WorkerProcess, subprocess_env, wait_until

BULK_IMPORT = str(Path(sys.executable).parent / "bulk-import")
FINAL_STATES = {"done", "failed", "cancelled", "blocked"}
STATUS_KEYS = {"id", "tenant", "mode", "state", "rows", "deactivated", "invites"}
ROW_KEYS = {"total", "invalid", "created", "updated", "unchanged", "skipped", "failed"}
INVITE_KEYS = {"pending", "scheduled", "sent", "failed"}
EXPORT_HEADERS = [*TEMPLATE_HEADERS, "Status", "Manager email", "Invite status"]

TEAM = [
    person("Mia", "Manager", "mia@example.com", "Sales", "Manager", title="Head of Sales"),
    person("Leo", "Learner", "leo@example.com", "Sales"),
    person("Ann", "Other", "ann@example.com", " sales ", secondary="Marketing; Support"),
    person("Sue", "Boss", "sue@example.com", "Support", "Manager"),
    person("Tom", "Solo", "tom@example.com", "Support", language="fr", location="Paris"),
    person("Kim", "Free", "kim@example.com"),
]


# --- running the CLI ---------------------------------------------------------


# The session's worker, when the running test uses it: a wait that times out
# says whether the worker died (something outside the test killed it) or hung.
_worker: WorkerProcess | None = None


@pytest.fixture(autouse=True)
def _watch_worker(request: pytest.FixtureRequest) -> Iterator[None]:
    global _worker
    _worker = request.getfixturevalue("worker") if "worker" in request.fixturenames else None
    yield
    _worker = None


def _worker_state() -> str:
    if _worker is None:
        return "this test runs no worker"
    if _worker.process is None or _worker.process.poll() is not None:
        return f"the worker process is gone (see {_worker.log_path})"
    return "the worker process is alive"


def cli(*args: str | Path | int, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``bulk-import ARGS`` as a user would and capture what it prints."""
    command = [BULK_IMPORT, *map(str, args)]
    try:
        return subprocess.run(
            command, env=subprocess_env(**env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"`bulk-import {' '.join(command[1:])}` still running after {timeout}s; {_worker_state()}\n"
            f"--- stderr\n{exc.stderr!r}"
        ) from None


def shown(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"`{' '.join(map(str, result.args[1:]))}` exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, shown(result)
    assert "Traceback" not in result.stderr, shown(result)
    return result


def one_line_error(result: subprocess.CompletedProcess[str], exit_code: int | None = None) -> str:
    """Assert a failure reported as one ``error: …`` line on stderr; return it."""
    assert result.returncode != 0, shown(result)
    if exit_code is not None:
        assert result.returncode == exit_code, shown(result)
    assert "Traceback" not in result.stderr + result.stdout, shown(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, shown(result)
    assert lines[0].startswith("error: "), shown(result)
    return lines[0]


def usage_error(result: subprocess.CompletedProcess[str]) -> str:
    """Assert click's usage error (exit 2, one ``Error:`` line, no traceback); return that line."""
    assert result.returncode == 2, shown(result)
    assert "Traceback" not in result.stderr + result.stdout, shown(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, shown(result)
    return errors[0]


def run_wait_json(
    path: Path, tenant: str, mode: str = "upsert", *extra: str, exit_code: int = 0
) -> dict[str, Any]:
    """``run FILE --wait --json``; return the status it prints."""
    result = cli("run", path, "--tenant", tenant, "--mode", mode, *extra, "--wait", "--json")
    assert result.returncode == exit_code, shown(result)
    assert "Traceback" not in result.stderr, shown(result)
    return json.loads(result.stdout)


def submit(path: Path, tenant: str, mode: str = "upsert") -> int:
    """``run FILE`` without ``--wait``: it prints the import id alone."""
    out = ok(cli("run", path, "--tenant", tenant, "--mode", mode)).stdout.strip()
    assert out.isdigit(), f"run printed {out!r}, not an import id"
    return int(out)


def status_json(import_id: int) -> dict[str, Any]:
    return json.loads(ok(cli("status", import_id, "--json")).stdout)


def poll_status(
    import_id: int, until: Callable[[dict[str, Any]], bool], *, timeout: float = 60, what: str = ""
) -> dict[str, Any]:
    """Poll ``status ID --json`` until ``until(status)`` holds, within ``timeout`` seconds."""
    last: dict[str, Any] = {}

    def check() -> bool:
        last.update(status_json(import_id))
        return until(last)

    try:
        wait_until(check, timeout=timeout, what=what or f"import {import_id}", interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last status: {last}; {_worker_state()}") from None
    return last


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as source:
        return list(csv.reader(source))


def export(tenant: str, tmp_path: Path) -> list[list[str]]:
    """``export --tenant T -o FILE``: the header row, then one row per person."""
    path = tmp_path / f"export-{uuid.uuid4().hex[:8]}.csv"
    ok(cli("export", "--tenant", tenant, "-o", path))
    return read_csv(path)


def export_by_email(tenant: str, tmp_path: Path) -> dict[str, dict[str, str]]:
    header, *rows = export(tenant, tmp_path)
    return {row[header.index("Email")]: dict(zip(header, row, strict=True)) for row in rows}


def valid_rows(status: dict[str, Any]) -> int:
    return int(status["rows"]["total"] - status["rows"]["invalid"])


# --- 1. migrate ----------------------------------------------------------------


def test_migrate_creates_the_schema_then_reports_it_up_to_date(database_url: str) -> None:
    name = f"bulk_import_accept_{uuid.uuid4().hex[:10]}"
    url = SERVER_URL.rsplit("/", 1)[0] + "/" + name
    try:
        first = ok(cli("migrate", DATABASE_URL=url))
        assert "created database" in first.stdout, shown(first)
        assert "applied 0001_" in first.stdout, shown(first)
        assert "up to date" not in first.stdout, shown(first)

        second = ok(cli("migrate", DATABASE_URL=url))
        assert "schema is up to date" in second.stdout, shown(second)
        assert "applied" not in second.stdout, shown(second)
    finally:

        async def drop() -> None:
            admin = await asyncpg.connect(SERVER_URL)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()

        asyncio.run(drop())


# --- 2. template ---------------------------------------------------------------


def test_template_has_the_template_headers(tmp_path: Path) -> None:
    path = tmp_path / "template.csv"
    ok(cli("template", "-o", path))
    assert read_csv(path) == [list(TEMPLATE_HEADERS)]

    to_stdout = ok(cli("template"))
    assert next(csv.reader(to_stdout.stdout.splitlines())) == list(TEMPLATE_HEADERS)


@pytest.mark.usefixtures("worker")
def test_the_example_template_imports_cleanly(tmp_path: Path, tenant: str) -> None:
    path = tmp_path / "example.csv"
    ok(cli("template", "--example", "-o", path))
    header, *rows = read_csv(path)
    assert header == list(TEMPLATE_HEADERS)
    assert rows, "the example template has no example rows"

    status = run_wait_json(path, tenant)

    assert status["state"] == "done", status
    assert status["rows"]["created"] == len(rows), status
    assert status["rows"]["invalid"] == 0, status
    assert sorted(export_by_email(tenant, tmp_path)) == sorted(row[2].lower() for row in rows)


# --- 3. run / status -------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_run_wait_json_prints_the_status_and_status_agrees(tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)

    status = run_wait_json(path, tenant, "upsert")

    assert not STATUS_KEYS - status.keys(), status
    assert not ROW_KEYS - status["rows"].keys(), status
    assert not INVITE_KEYS - status["invites"].keys(), status
    assert isinstance(status["id"], int), status
    assert (status["tenant"], status["mode"], status["state"]) == (tenant, "upsert", "done")
    assert status["rows"]["total"] == len(TEAM)
    assert (status["rows"]["created"], status["rows"]["invalid"], status["rows"]["failed"]) == (
        len(TEAM),
        0,
        0,
    )
    assert status["deactivated"] == 0

    again = status_json(status["id"])
    assert {key: again[key] for key in STATUS_KEYS} == {key: status[key] for key in STATUS_KEYS}

    text = ok(cli("status", status["id"]))
    assert "done" in text.stdout, shown(text)
    assert str(status["id"]) in text.stdout, shown(text)
    assert tenant in text.stdout, shown(text)


@pytest.mark.usefixtures("worker")
def test_run_without_wait_prints_the_id_and_the_import_completes(tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)

    result = ok(cli("run", path, "--tenant", tenant, "--mode", "upsert"))

    assert re.fullmatch(r"\d+\n", result.stdout), shown(result)
    import_id = int(result.stdout)
    final = poll_status(import_id, lambda s: s["state"] in FINAL_STATES)
    assert final["state"] == "done", final
    assert (final["id"], final["tenant"], final["rows"]["created"]) == (import_id, tenant, len(TEAM))

    as_json = ok(cli("run", path, "--tenant", tenant, "--mode", "upsert", "--json"))
    second_id = json.loads(as_json.stdout)["id"]
    assert isinstance(second_id, int) and second_id > import_id, shown(as_json)
    assert poll_status(second_id, lambda s: s["state"] in FINAL_STATES)["state"] == "done"


# --- 4. export -------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_export_lists_everyone_with_status_manager_and_invite(tmp_path: Path, tenant: str) -> None:
    status = run_wait_json(write_csv(tmp_path / "people.csv", TEAM), tenant)
    assert status["state"] == "done", status

    header, *rows = export(tenant, tmp_path)

    assert header == EXPORT_HEADERS
    people = {row[2]: dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(people) == sorted(row[2] for row in TEAM)
    # A Manager row's team members report to the manager; the manager to nobody.
    assert people["leo@example.com"]["Manager email"] == "mia@example.com"
    assert people["ann@example.com"]["Manager email"] == "mia@example.com"
    assert people["tom@example.com"]["Manager email"] == "sue@example.com"
    assert people["mia@example.com"]["Manager email"] == ""
    assert people["sue@example.com"]["Manager email"] == ""
    assert people["kim@example.com"]["Manager email"] == ""
    # " sales " is the team first spelled "Sales".
    assert people["ann@example.com"]["Primary team"] == "Sales"
    assert people["ann@example.com"]["Secondary team"] == "Marketing; Support"
    assert people["mia@example.com"]["Role"] == "Manager"
    assert people["mia@example.com"]["Job title"] == "Head of Sales"
    assert people["tom@example.com"]["Location"] == "Paris"
    assert {p["Status"] for p in people.values()} == {"active"}


# --- 5. errors -------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_errors_lists_each_rejected_row_with_its_values_and_a_reason(tmp_path: Path, tenant: str) -> None:
    rows = [
        person("Good", "Row", "good@example.com", "Ops"),  # row 2
        person("", "Nameless", "nameless@example.com", title='=HYPERLINK("http://x")'),  # row 3
        person("Bad", "Mail", "not-an-email"),  # row 4
        person("Dup", "Licate", "GOOD@example.com"),  # row 5
        person("Also", "Good", "also@example.com"),  # row 6
    ]
    status = run_wait_json(write_csv(tmp_path / "people.csv", rows), tenant)
    assert (status["state"], status["rows"]["invalid"], status["rows"]["created"]) == ("done", 3, 2)

    out = tmp_path / "errors.csv"
    result = ok(cli("errors", status["id"], "-o", out))

    header, *lines = read_csv(out)
    assert header == ["Row", *TEMPLATE_HEADERS, "Reason"], shown(result)
    by_row = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
    assert sorted(by_row) == ["3", "4", "5"], lines
    for number, original in zip(("3", "4", "5"), rows[1:4], strict=True):
        line = by_row[number]
        assert line["Reason"].strip(), line
        for column, value in zip(TEMPLATE_HEADERS, original, strict=True):
            if column != "Job title" or number != "3":
                assert line[column] == value, (column, line)
    assert "First name" in by_row["3"]["Reason"], by_row["3"]
    assert "Email" in by_row["4"]["Reason"] or "e-mail" in by_row["4"]["Reason"].lower(), by_row["4"]
    assert "row 2" in by_row["5"]["Reason"], by_row["5"]
    # A formula written back is neutralised for the spreadsheet that opens it.
    assert by_row["3"]["Job title"] == "'" + rows[1][3], by_row["3"]

    # Without -o the same CSV goes to stdout.
    to_stdout = ok(cli("errors", status["id"]))
    assert list(csv.reader(to_stdout.stdout.splitlines())) == [header, *lines]


# --- 6, 7. the sync guard ----------------------------------------------------------


def _blocked_sync(tmp_path: Path, tenant: str, people: int = 8) -> tuple[list[list[str]], dict[str, Any]]:
    """A tenant of ``people`` active people and a sync import of one of them, blocked."""
    staff = [person(f"P{i}", "Staff", f"p{i}@example.com", "Ops") for i in range(people)]
    assert run_wait_json(write_csv(tmp_path / "all.csv", staff), tenant)["state"] == "done"
    blocked = run_wait_json(write_csv(tmp_path / "one.csv", staff[:1]), tenant, "sync", exit_code=3)
    return staff, blocked


@pytest.mark.usefixtures("worker")
def test_sync_guard_blocks_then_resume_with_approval_deactivates(tmp_path: Path, tenant: str) -> None:
    staff, blocked = _blocked_sync(tmp_path, tenant)

    assert blocked["state"] == "blocked", blocked
    assert (blocked["would_deactivate"], blocked["deactivated"]) == (len(staff) - 1, 0), blocked
    text = ok(cli("status", blocked["id"]))
    assert "blocked" in text.stdout and "--allow-mass-deactivation" in text.stdout, shown(text)
    people = export_by_email(tenant, tmp_path)
    assert len(people) == len(staff)
    assert {p["Status"] for p in people.values()} == {"active"}, "nobody is deactivated while blocked"

    ok(cli("resume", blocked["id"], "--allow-mass-deactivation"))

    final = poll_status(blocked["id"], lambda s: s["state"] in FINAL_STATES - {"blocked"})
    assert (final["state"], final["deactivated"]) == ("done", len(staff) - 1), final
    people = export_by_email(tenant, tmp_path)
    assert len(people) == len(staff), "deactivated, never deleted"
    assert people.pop("p0@example.com")["Status"] == "active"
    assert {p["Status"] for p in people.values()} == {"deactivated"}


@pytest.mark.usefixtures("worker")
def test_resume_of_a_blocked_import_without_approval_is_refused(tmp_path: Path, tenant: str) -> None:
    _, blocked = _blocked_sync(tmp_path, tenant)
    assert blocked["state"] == "blocked", blocked

    line = one_line_error(cli("resume", blocked["id"]))

    assert "--allow-mass-deactivation" in line
    assert status_json(blocked["id"])["state"] == "blocked"
    assert {p["Status"] for p in export_by_email(tenant, tmp_path).values()} == {"active"}


# --- 8. cancel -----------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_cancel_of_a_finished_import_cancels_its_unsent_invites_then_is_refused(
    tmp_path: Path, tenant: str
) -> None:
    done = run_wait_json(write_csv(tmp_path / "people.csv", TEAM[:2]), tenant)
    assert done["state"] == "done", done
    assert done["invites"]["pending"] == 2, done

    first = cli("cancel", done["id"])
    assert first.returncode == 0, shown(first)
    assert "its 2 unsent invites are cancelled" in first.stdout, shown(first)
    assert status_json(done["id"])["invites"]["pending"] == 0

    line = one_line_error(cli("cancel", done["id"]))

    assert str(done["id"]) in line and "done" in line, line
    assert status_json(done["id"])["state"] == "done"


@pytest.mark.usefixtures("worker")
def test_cancel_of_an_import_queued_behind_a_blocked_one(tmp_path: Path, tenant: str) -> None:
    """Deterministic: a blocked import holds the tenant, so the next one stays queued."""
    _, blocked = _blocked_sync(tmp_path, tenant)
    newcomers = [person("New", f"Hire{i}", f"new{i}@example.com") for i in range(3)]
    queued_id = submit(write_csv(tmp_path / "new.csv", newcomers), tenant)
    assert status_json(queued_id)["state"] == "queued"

    result = ok(cli("cancel", queued_id))

    assert f"import {queued_id} cancelled" in result.stdout, shown(result)
    assert status_json(queued_id)["state"] == "cancelled"
    # Approving the blocked import lets it end; the cancelled one must not start then.
    ok(cli("resume", blocked["id"], "--allow-mass-deactivation"))
    assert poll_status(blocked["id"], lambda s: s["state"] == "done")["state"] == "done"
    cancelled = status_json(queued_id)
    assert cancelled["state"] == "cancelled", cancelled
    assert cancelled["rows"]["created"] == 0, cancelled
    assert not {"new0@example.com", "new1@example.com", "new2@example.com"} & set(
        export_by_email(tenant, tmp_path)
    )


@pytest.mark.usefixtures("worker")
def test_cancel_of_an_import_queued_behind_a_running_one(
    tmp_path: Path, tenant: str, worker: WorkerProcess
) -> None:
    big = write_people_csv(tmp_path / "big.csv", 3_000)
    newcomers = [person("Late", f"Comer{i}", f"late{i}@example.com") for i in range(3)]
    small = write_csv(tmp_path / "small.csv", newcomers)

    # One import per tenant at a time: the second waits while the first runs,
    # which the worker, paused meanwhile, keeps running however fast it is.
    with paused(worker):
        first_id = submit(big, tenant)
        second_id = submit(small, tenant)
        second = status_json(second_id)
        assert second["state"] == "queued", f"not queued behind import {first_id}: {second}"
        result = ok(cli("cancel", second_id))

    assert result.stdout.strip() == f"import {second_id} cancelled", shown(result)
    first = poll_status(first_id, lambda s: s["state"] in FINAL_STATES, timeout=90)
    assert (first["state"], first["rows"]["created"]) == ("done", 3_000), first
    second = status_json(second_id)
    assert second["state"] == "cancelled", second
    assert second["rows"]["created"] == 0, second
    people = export_by_email(tenant, tmp_path)
    assert len(people) == 3_000
    assert not {row[2] for row in newcomers} & set(people)


# --- 9. errors as one line -----------------------------------------------------------


def test_run_of_a_missing_file_is_a_usage_error(tmp_path: Path, tenant: str) -> None:
    missing = tmp_path / "nowhere.csv"
    line = usage_error(cli("run", missing, "--tenant", tenant, "--mode", "upsert"))
    assert str(missing) in line and "does not exist" in line, line


def test_run_of_a_file_without_an_email_column_is_rejected(
    database_url: str, tmp_path: Path, tenant: str
) -> None:
    header = [h for h in TEMPLATE_HEADERS if h != "Email"]
    path = write_csv(tmp_path / "no-email.csv", [["Ann", "Lee", "", "", "", "", "", ""]], header=header)

    line = one_line_error(cli("run", path, "--tenant", tenant, "--mode", "upsert"), exit_code=2)

    assert "'Email'" in line, line


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            b"PK\x03\x04\x14\x00\x06\x00" + b"[Content_Types].xml" + b"\x00" * 40 + b"xl/workbook.xml",
            "damaged",
        ),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 200, "xls"),
        (b"First name,Last name,Email\n\x00\x01\x02\x03binary\xff\xfe\x00", "NUL"),
    ],
    ids=["xlsx", "xls", "binary"],
)
def test_run_of_a_workbook_or_binary_file_is_rejected(
    database_url: str, tmp_path: Path, tenant: str, content: bytes, words: str
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(content)

    line = one_line_error(cli("run", path, "--tenant", tenant, "--mode", "upsert"), exit_code=2)

    assert words in line, line


def test_status_of_an_unknown_import(database_url: str) -> None:
    line = one_line_error(cli("status", 999_999))
    assert "999999" in line and "no import" in line, line
    line = one_line_error(cli("errors", 999_999))
    assert "999999" in line, line
    line = one_line_error(cli("cancel", 999_999))
    assert "999999" in line, line


def test_an_unknown_mode_is_a_usage_error(tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)
    line = usage_error(cli("run", path, "--tenant", tenant, "--mode", "wrong"))
    assert "--mode" in line and "'wrong'" in line, line


async def test_invites_at_needs_a_send_at(conn: Any, tmp_path: Path, tenant: str) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)

    missing = one_line_error(
        await asyncio.to_thread(cli, "run", path, "--tenant", tenant, "--mode", "upsert", "--invites", "at")
    )
    assert "--send-at" in missing, missing

    bad = one_line_error(
        await asyncio.to_thread(
            cli, "run", path, "--tenant", tenant, "--mode", "upsert", "--invites", "at", "--send-at", "soon"
        )
    )
    assert "--send-at" in bad and "'soon'" in bad, bad

    assert await conn.fetchval("SELECT count(*) FROM imports WHERE tenant_id = $1", tenant) == 0


@pytest.mark.parametrize("command", [["status", "1"], ["run", "{file}", "--tenant", "t", "--mode", "upsert"]])
def test_an_unreachable_database_is_one_line_with_the_password_redacted(
    tmp_path: Path, command: Sequence[str]
) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)
    args = [arg.format(file=path) for arg in command]

    result = cli(*args, DATABASE_URL="postgresql://user:secret@127.0.0.1:1/x", timeout=60)

    line = one_line_error(result, exit_code=1)
    assert line.startswith("error: cannot reach PostgreSQL"), line
    assert "127.0.0.1:1" in line, line
    assert "secret" not in result.stderr + result.stdout, shown(result)


def test_an_unreachable_redis_is_one_line_with_the_password_redacted(
    database_url: str, tmp_path: Path, tenant: str
) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)

    # Nothing listens on port 1: the run's broker (TEST_BROKER), unreachable.
    unreachable = (
        "amqp://guest:secret@127.0.0.1:1/x" if TEST_BROKER == "rabbitmq" else "redis://:secret@127.0.0.1:1/0"
    )
    result = cli("run", path, "--tenant", tenant, "--mode", "upsert", BROKER_URL=unreachable)

    line = one_line_error(result, exit_code=1)
    # The import is already recorded in PostgreSQL: the message says how to finish it.
    import_id = re.search(r"import (\d+) is recorded but its rows could not be queued", line)
    assert import_id, line
    assert f"bulk-import resume {import_id[1]}" in line, line
    assert "secret" not in result.stderr + result.stdout, shown(result)


@pytest.mark.parametrize(
    "command",
    [
        ["template", "-o", "{out}"],
        ["export", "--tenant", "{tenant}", "-o", "{out}"],
        ["errors", "999999", "-o", "{out}"],
    ],
    ids=["template", "export", "errors"],
)
def test_an_unwritable_output_file_is_one_line_naming_the_file(
    database_url: str, tmp_path: Path, tenant: str, command: Sequence[str]
) -> None:
    out = tmp_path / "no-such-directory" / "out.csv"
    args = [arg.format(out=out, tenant=tenant) for arg in command]

    line = one_line_error(cli(*args))

    assert str(out) in line, line
    assert "PostgreSQL" not in line, line


# --- 10. re-running the same file -------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_rerunning_the_same_file_changes_nothing(tmp_path: Path, tenant: str) -> None:
    rows = [*TEAM, person("", "Invalid", "invalid@example.com")]
    path = write_csv(tmp_path / "people.csv", rows)
    first = run_wait_json(path, tenant)
    assert (first["state"], first["rows"]["created"], first["rows"]["invalid"]) == ("done", len(TEAM), 1)
    before = export(tenant, tmp_path)

    second = run_wait_json(path, tenant)

    assert second["state"] == "done", second
    assert second["id"] != first["id"]
    assert second["rows"]["unchanged"] == valid_rows(second) == len(TEAM), second
    assert (second["rows"]["created"], second["rows"]["updated"], second["rows"]["failed"]) == (0, 0, 0)
    assert export(tenant, tmp_path) == before


@pytest.mark.parametrize("command", ["send", "retry"])
def test_invites_for_a_tenant_that_does_not_exist_is_one_line(command: str, database_url: str) -> None:
    result = cli("invites", command, "--tenant", "nobody-at-all")

    message = one_line_error(result, 1)
    assert "no tenant 'nobody-at-all'" in message


# --- 11. blank cells -----------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_blank_cells_keep_leaves_stored_values_and_the_review_predicts_it(
    tmp_path: Path, tenant: str
) -> None:
    run_wait_json(write_csv(tmp_path / "people.csv", TEAM), tenant)
    blanks = write_csv(
        tmp_path / "blanks.csv",
        [
            person("Mia", "Manager", "mia@example.com"),
            person("Tom", "Solo", "tom@example.com", location="Oslo"),
        ],
    )

    review = json.loads(
        ok(cli("review", blanks, "--tenant", tenant, "--blank-cells", "keep", "--json")).stdout
    )
    text = ok(cli("review", blanks, "--tenant", tenant, "--blank-cells", "keep")).stdout
    status = run_wait_json(blanks, tenant, "upsert", "--blank-cells", "keep")

    # The command the review suggests keeps the option.
    assert "(upsert, blank cells kept)" in text and "--mode upsert --blank-cells keep" in text, text
    assert review["blank_cells"] == "keep"
    assert (review["preview"]["unchanged"], review["preview"]["update"]) == (1, 1), review["preview"]
    assert status["blank_cells"] == "keep"
    assert (status["rows"]["unchanged"], status["rows"]["updated"]) == (1, 1), status
    assert status_json(status["id"])["blank_cells"] == "keep"
    people = export_by_email(tenant, tmp_path)
    mia, tom = people["mia@example.com"], people["tom@example.com"]
    assert (mia["Job title"], mia["Primary team"], mia["Role"]) == ("Head of Sales", "Sales", "Manager")
    assert (tom["Primary team"], tom["Language"], tom["Location"]) == ("Support", "fr", "Oslo")


@pytest.mark.parametrize("command", ["run", "review"])
def test_an_unknown_blank_cells_value_is_a_usage_error_naming_the_values(
    command: str, tmp_path: Path, tenant: str
) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)

    line = usage_error(cli(command, path, "--tenant", tenant, "--mode", "upsert", "--blank-cells", "never"))

    assert "--blank-cells" in line and "'never'" in line and "'clear', 'keep'" in line, line


# --- 12. column choices ------------------------------------------------------------------


@pytest.mark.usefixtures("worker")
def test_map_chooses_what_columns_mean_the_review_suggests_it_and_the_import_remembers_it(
    tmp_path: Path, tenant: str
) -> None:
    header = ["Email", "First name", "Last name", "Titre", "Notes"]
    path = write_csv(tmp_path / "people.csv", [["ann@example.com", "Ann", "Lee", "Lead", "x"]], header)
    maps = ("--map", "Titre=Job title", "--map", "notes=")

    text = ok(cli("review", path, "--tenant", tenant, *maps)).stdout
    status = run_wait_json(path, tenant, "upsert", *maps)
    again = json.loads(ok(cli("review", path, "--tenant", tenant, "--json")).stdout)

    assert "your choices: Titre → Job title, Notes ignored" in text, text
    assert "--map Titre=job_title --map Notes=ignore" in text, text
    assert status["state"] == "done", status
    assert status["mapping"] == {"Titre": "job_title", "Notes": None}
    assert export_by_email(tenant, tmp_path)["ann@example.com"]["Job title"] == "Lead"
    assert again["columns"]["remembered"] == ["Titre", "Notes"]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("Titre", 'expected "Header=field"'),
        ("=job_title", "'=job_title'"),
        ("Titre=poste", "'poste' is not a field"),
    ],
)
def test_a_malformed_map_is_a_usage_error_naming_the_value(
    value: str, words: str, tmp_path: Path, tenant: str
) -> None:
    path = write_csv(tmp_path / "people.csv", TEAM)

    line = usage_error(cli("review", path, "--tenant", tenant, "--map", value))

    assert "--map" in line and words in line, line
