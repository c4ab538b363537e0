"""Acceptance: ``bulk-import webhook …`` and ``run --external-id``, run as a user runs them,
with the Procfile's worker delivering to a receiver on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_cli import cli, ok, one_line_error, run_wait_json

from tests.support.imports import person, write_csv
from tests.support.receiver import Receiver, receiving


@pytest.mark.usefixtures("worker")
def test_a_service_registers_a_url_imports_with_an_external_id_and_hears_back(
    tmp_path: Path, tenant: str
) -> None:
    ok(cli("tenant", "set", tenant, "--name", "Acme"))
    receiver = Receiver()
    with receiving(receiver):
        added = ok(cli("webhook", "add", "--tenant", tenant, receiver.url, "--events", "import.completed"))
        secret = added.stdout.strip()
        assert secret.startswith("whsec_") and "\n" not in secret  # the secret alone on stdout
        assert f"{receiver.url} (import.completed)" in added.stderr
        receiver.secrets = [secret]

        status = run_wait_json(
            write_csv(tmp_path / "a.csv", [person("A", "B", f"a.{tenant}@example.com")]),
            tenant,
            "upsert",
            "--external-id",
            "crm-7",
        )
        deadline = time.monotonic() + 30
        while not receiver.delivered():
            assert time.monotonic() < deadline, "no delivery within 30 s"
            time.sleep(0.05)

    assert status["state"] == "done" and status["external_id"] == "crm-7"
    (delivered,) = receiver.delivered()
    assert receiver.bad_signatures == 0
    assert delivered.event["data"]["external_id"] == "crm-7"
    (listed,) = [
        json.loads(line) for line in ok(cli("webhook", "list", "--tenant", tenant)).stdout.splitlines()
    ]
    assert listed["url"] == receiver.url and listed["deliveries"]["delivered"] == 1
    assert "whsec_" not in json.dumps(listed)
    (delivery,) = [
        json.loads(line) for line in ok(cli("webhook", "deliveries", "--tenant", tenant)).stdout.splitlines()
    ]
    assert (delivery["state"], delivery["type"]) == ("delivered", "import.completed")
    again = one_line_error(cli("webhook", "redeliver", delivery["id"]))
    assert "delivered already" in again

    rotated = ok(cli("webhook", "rotate", "--tenant", tenant, listed["id"])).stdout.strip()
    assert rotated.startswith("whsec_") and rotated != secret
    assert ok(cli("webhook", "remove", "--tenant", tenant, listed["id"])).stdout.strip() == (
        f"endpoint {listed['id']} removed"
    )
    gone = one_line_error(cli("webhook", "remove", "--tenant", tenant, listed["id"]))
    assert f"no webhook endpoint {listed['id']} for tenant" in gone


def test_unsafe_or_unknown_webhooks_are_refused_in_one_line(tenant: str) -> None:
    ok(cli("tenant", "set", tenant, "--name", "Acme"))

    metadata = one_line_error(
        cli("webhook", "add", "--tenant", tenant, "http://169.254.169.254/latest/meta-data/")
    )
    assert "link-local" in metadata
    loopback = one_line_error(
        cli(
            "webhook",
            "add",
            "--tenant",
            tenant,
            "https://localhost:8443/hooks",
            WEBHOOK_ALLOW_LOOPBACK="false",
        )
    )
    assert "resolves to 127.0.0.1, a loopback address" in loopback and "WEBHOOK_ALLOW_LOOPBACK" in loopback
    plain = one_line_error(
        cli("webhook", "add", "--tenant", tenant, "http://127.0.0.1:9/hooks", WEBHOOK_ALLOW_LOOPBACK="false")
    )
    assert "must be https://" in plain
    events = one_line_error(
        cli("webhook", "add", "--tenant", tenant, "http://127.0.0.1:9/h", "--events", "import.done")
    )
    assert "unknown event type 'import.done'" in events
    nobody = one_line_error(
        cli("webhook", "add", "--tenant", "t-nobody-" + tenant[2:], "http://127.0.0.1:9/h")
    )
    assert "no tenant" in nobody
    assert "no webhook delivery 987654321" in one_line_error(cli("webhook", "redeliver", "987654321"))
