"""Acceptance: ``bulk-import source …`` run as an operator runs it, against asyncssh's SFTP server
on loopback, the Procfile's worker doing the runs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import BULK_IMPORT, cli, ok, one_line_error, shown

from tests.support.imports import person, write_csv
from tests.support.services import subprocess_env
from tests.support.sources import SftpServer


@pytest.fixture
def sftp(tmp_path: Path) -> Iterator[SftpServer]:
    (tmp_path / "sftp").mkdir()
    server = SftpServer(tmp_path / "sftp")
    server.start()
    yield server
    server.close()


def add(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """``bulk-import source add ARGS``, the password (if any) on stdin as --password-stdin reads it."""
    extra = ["--password-stdin"] if password is not None else []
    return subprocess.run(
        [BULK_IMPORT, "source", "add", *args, *extra],
        input=(password or "") + "\n",
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("worker")
def test_an_operator_adds_an_sftp_source_tests_it_runs_it_and_the_same_file_again_is_unchanged(
    tmp_path: Path, tenant: str, sftp: SftpServer
) -> None:
    ok(cli("tenant", "set", tenant, "--timezone", "Europe/Paris"))
    where = ["--tenant", tenant, "--name", "Workday", "--url", sftp.url("exports/people-*.csv")]
    unconfirmed = add(*where, password=sftp.password)
    assert unconfirmed.returncode == 4, shown(unconfirmed)
    assert unconfirmed.stdout.strip() == sftp.fingerprint and "--host-key" in unconfirmed.stderr
    assert json.loads(ok(cli("source", "list", "--tenant", tenant, "--json")).stdout) == []
    wrong = add(*where, "--host-key", "SHA256:" + "B" * 43, password=sftp.password)
    assert wrong.returncode == 1 and "nothing was saved" in wrong.stderr

    made = add(
        *where, "--host-key", sftp.fingerprint, "--schedule", "0 3 * * *", "--json", password=sftp.password
    )
    source = json.loads(ok(made).stdout)
    assert source["schedule"] == "0 3 * * *" and source["host_key"] == sftp.fingerprint
    assert sftp.password not in made.stdout + made.stderr
    assert "the folder /exports of" in one_line_error(cli("source", "test", source["id"]))
    (sftp.root / "exports").mkdir()
    assert "no file matches /exports/people-*.csv" in one_line_error(cli("source", "test", source["id"]))

    rows = [person("Ada", "L", f"ada.{tenant}@example.com"), person("Bob", "B", f"bob.{tenant}@example.com")]
    sftp.drop("exports/people-1.csv", write_csv(tmp_path / "p.csv", rows).read_text())
    assert "people-1.csv" in ok(cli("source", "test", source["id"])).stdout
    first = json.loads(ok(cli("source", "run", source["id"], "--wait", "--json")).stdout)
    assert first["outcome"] == "imported" and first["file"] == "people-1.csv"
    status = json.loads(ok(cli("status", first["import_id"], "--json")).stdout)
    assert status["source"] == {"id": source["id"], "name": "Workday"}
    again = ok(cli("source", "run", source["id"], "--wait"))
    assert "unchanged" in again.stdout

    header = ["First name", "Last name", "Work contact"]
    sftp.drop(
        "exports/people-2.csv",
        write_csv(tmp_path / "b.csv", [["A", "B", "a@example.com"]], header).read_text(),
    )
    blocked = cli("source", "run", source["id"], "--wait")
    assert (
        blocked.returncode == 3
        and "blocked: people-2.csv: the file has no column for 'Email'" in blocked.stdout
    )

    by_key = tmp_path / "id_ed25519"
    by_key.write_text(sftp.private_key_text())
    keyed = json.loads(
        ok(
            add(
                *where[:3],
                "by key",
                "--url",
                sftp.url("exports/people-1.csv"),
                "--key",
                str(by_key),
                "--accept-host-key",
                "--json",
            )
        ).stdout
    )
    assert "logged in" in ok(cli("source", "test", keyed["id"])).stdout

    assert "paused" in ok(cli("source", "pause", source["id"])).stdout
    assert "next " in ok(cli("source", "resume", source["id"])).stdout
    assert "removed" in ok(cli("source", "remove", keyed["id"])).stdout
    (listed,) = json.loads(ok(cli("source", "list", "--tenant", tenant, "--json")).stdout)
    assert listed["id"] == source["id"] and listed["last_run"]["outcome"] == "blocked"
