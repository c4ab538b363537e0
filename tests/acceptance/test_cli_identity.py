"""Acceptance: an HR admin at the command line moves everyone to a new domain, and undoes it.

The real console script as a subprocess and the Procfile's worker, as in ``test_cli``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import cli, export_by_email, ok, one_line_error, run_wait_json, shown

from tests.support.imports import person, write_csv

pytestmark = pytest.mark.usefixtures("worker")


def staff(domain: str, *, ids: bool = True) -> list[list[str]]:
    return [
        person("Dana", "Cho", f"dana.cho@{domain}", "Sales", "Manager", employee_id="E1" if ids else ""),
        person("Eli", "Ng", f"eli@{domain}", "Sales", employee_id="E2" if ids else ""),
        person("Fay", "Oz", f"fay@{domain}", "Support", "Manager", employee_id="E3" if ids else ""),
        person("Gus", "Po", f"gus@{domain}", "Support", employee_id="E4" if ids else ""),
    ]


def test_a_domain_migration_by_employee_id_reviewed_run_and_undone(tmp_path: Path, tenant: str) -> None:
    # People imported before anyone had ids; the first file with ids adopts them.
    ok(
        cli(
            "run",
            write_csv(tmp_path / "a.csv", staff("acme.example", ids=False)),
            "--tenant",
            tenant,
            "--mode",
            "upsert",
            "--wait",
        )
    )
    adopted = run_wait_json(
        write_csv(tmp_path / "b.csv", staff("acme.example")), tenant, "sync", "--match-by", "employee-id"
    )
    assert (adopted["match_by"], adopted["rows"]["updated"], adopted["rows"]["created"]) == (
        "employee-id",
        4,
        0,
    )

    moved = write_csv(tmp_path / "c.csv", staff("acme-group.com"))
    review = cli("review", moved, "--tenant", tenant, "--mode", "sync")
    ok(review)
    # The tenant's key is remembered: the review says so, and the command it suggests carries it.
    assert "people matched by employee id" in review.stdout
    assert "change 4 e-mail addresses (the same people, renamed" in review.stdout
    assert "Email: dana.cho@acme.example → dana.cho@acme-group.com" in review.stdout
    assert "--match-by employee-id" in review.stdout
    as_json = json.loads(ok(cli("review", moved, "--tenant", tenant, "--mode", "sync", "--json")).stdout)
    assert as_json["match_by"] == "employee-id"
    assert (
        as_json["preview"]["create"],
        as_json["preview"]["deactivate"],
        as_json["preview"]["email_changes"],
    ) == (0, 0, 4)

    status = run_wait_json(moved, tenant, "sync")

    assert status["state"] == "done" and status["match_by"] == "employee-id"
    assert (status["rows"]["created"], status["rows"]["updated"], status["rows"]["email_changed"]) == (
        0,
        4,
        4,
    )
    assert status["deactivated"] == 0
    text = ok(cli("status", status["id"])).stdout
    assert "e-mail addresses changed: 4 (people matched by employee-id)" in text
    people = export_by_email(tenant, tmp_path)
    assert sorted(people) == [
        "dana.cho@acme-group.com",
        "eli@acme-group.com",
        "fay@acme-group.com",
        "gus@acme-group.com",
    ]
    assert people["eli@acme-group.com"]["Manager email"] == "dana.cho@acme-group.com"
    assert people["gus@acme-group.com"]["Employee ID"] == "E4"

    undone = json.loads(ok(cli("undo", status["id"], "--wait", "--json")).stdout)
    assert undone["state"] == "done" and undone["undo"]["emails_restored"] == 4
    back = export_by_email(tenant, tmp_path)
    assert sorted(back) == [
        "dana.cho@acme.example",
        "eli@acme.example",
        "fay@acme.example",
        "gus@acme.example",
    ]
    assert back["eli@acme.example"]["Manager email"] == "dana.cho@acme.example"


def test_a_rename_with_a_previous_email_column_and_a_conflict_at_the_command_line(
    tmp_path: Path, tenant: str
) -> None:
    ok(
        cli(
            "run",
            write_csv(tmp_path / "a.csv", staff("acme.example", ids=False)),
            "--tenant",
            tenant,
            "--mode",
            "upsert",
            "--wait",
        )
    )
    header = ["First name", "Last name", "Email", "Previous email"]
    rows = [
        ["Dana", "Park", "dana.park@acme.example", "dana.cho@acme.example"],
        ["Eli", "Ng", "fay@acme.example", "eli@acme.example"],  # Fay keeps her address
    ]
    status = run_wait_json(write_csv(tmp_path / "b.csv", rows, header), tenant, "upsert")

    assert status["match_by"] == "email"
    assert (status["rows"]["updated"], status["rows"]["email_changed"], status["rows"]["invalid"]) == (
        1,
        1,
        1,
    )
    errors = ok(cli("errors", status["id"])).stdout
    assert "fay@acme.example is the address of Fay Oz (fay@acme.example)" in errors
    people = export_by_email(tenant, tmp_path)
    assert "dana.park@acme.example" in people and "dana.cho@acme.example" not in people
    assert people["dana.park@acme.example"]["Last name"] == "Park"


def test_a_match_key_that_is_none_and_a_file_without_ids_by_employee_id(tmp_path: Path, tenant: str) -> None:
    path = write_csv(
        tmp_path / "a.csv", [r[:3] for r in staff("acme.example")], ["First name", "Last name", "Email"]
    )
    refused = cli("run", path, "--tenant", tenant, "--mode", "upsert", "--match-by", "badge")
    assert refused.returncode == 2 and "--match-by" in refused.stderr, shown(refused)
    line = one_line_error(
        cli("run", path, "--tenant", tenant, "--mode", "upsert", "--match-by", "employee-id"), 2
    )
    assert "no 'Employee ID' column" in line and "match people by e-mail" in line
