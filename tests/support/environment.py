"""The environment every process of the test run reads, set at import.

The test process itself, and the CLI, web and worker subprocesses it starts
(they inherit ``os.environ``), read their settings from the environment. This
module points them at the test services before any project module builds its
broker: ``tests/conftest.py`` imports it before anything else, and it is only
ever imported as ``tests.support.environment``, so it runs once per session.
"""

from __future__ import annotations

import atexit
import os
import tempfile

import trustme

from tests.support.services import free_port

SERVER_URL = os.environ.get("TEST_DATABASE_SERVER_URL", "postgresql://127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_DATABASE = f"bulk_import_test_{os.getpid()}"
TEST_DATABASE_URL = SERVER_URL.rsplit("/", 1)[0] + "/" + TEST_DATABASE

os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ["REDIS_URL"] = TEST_REDIS_URL
# A namespace of its own, so test runs side by side never see each other's queues.
TEST_REDIS_NAMESPACE = f"bulk-import-test-{os.getpid()}"
os.environ["REDIS_NAMESPACE"] = TEST_REDIS_NAMESPACE
# The broker of the run: TEST_BROKER=redis (the default) or rabbitmq. On
# RabbitMQ, a virtual host of its own per run (made by the ``broker_url``
# fixture), for the same reason as the Redis namespace.
TEST_BROKER = os.environ.get("TEST_BROKER", "redis")
if TEST_BROKER not in ("redis", "rabbitmq"):
    raise RuntimeError(f"TEST_BROKER={TEST_BROKER!r}: redis or rabbitmq")
TEST_RABBITMQ_SERVER = os.environ.get("TEST_RABBITMQ_SERVER", "amqp://guest:guest@127.0.0.1:5672")
TEST_RABBITMQ_VHOST = f"bulk-import-test-{os.getpid()}"
TEST_BROKER_URL = (
    f"{TEST_RABBITMQ_SERVER}/{TEST_RABBITMQ_VHOST}" if TEST_BROKER == "rabbitmq" else TEST_REDIS_URL
)
os.environ["BROKER_URL"] = TEST_BROKER_URL
os.environ.setdefault("LOG_FORMAT", "json")

# A real SMTP server (aiosmtpd, the ``smtp_server`` fixture) runs in the test
# process for the session, on this port (TEST_SMTP_PORT, else a free one).
SMTP_PORT = int(os.environ.setdefault("TEST_SMTP_PORT", str(free_port())))
os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{SMTP_PORT}"
# Fast retries and housekeeping, so the tests wait seconds rather than minutes.
os.environ["INVITE_MIN_BACKOFF_MS"] = "200"
os.environ["HOUSEKEEPING_INTERVAL_S"] = "1"
os.environ["INVITE_RELEASE_GRACE_S"] = "2"
os.environ["ACCEPT_BASE_URL"] = "https://people.example.com/accept"
os.environ["HEARTBEAT_TIMEOUT_MS"] = "5000"
os.environ["ROW_MIN_BACKOFF_MS"] = "100"
# Webhooks to the tests' receivers on loopback, retried within seconds.
os.environ["WEBHOOK_ALLOW_LOOPBACK"] = "true"
os.environ["WEBHOOK_TIMEOUT_S"] = "1"
os.environ["WEBHOOK_MIN_BACKOFF_MS"] = "200"
os.environ["WEBHOOK_MAX_BACKOFF_MS"] = "1000"
os.environ["WEBHOOK_MAX_ATTEMPTS"] = "6"
os.environ["WEBHOOK_OVERDUE_GRACE_S"] = "2"
# Fewer attempts at once than the tests' receivers can be sent, to use the limit.
os.environ["WEBHOOK_CONCURRENCY"] = "4"
# Scheduled sources: a fixed key for their secrets, the tests' SFTP and HTTPS
# servers on loopback, and an HTTPS test CA that every process trusts
# (tests.support.sources serves with it); retries within a fraction of a second.
os.environ["SOURCE_SECRET_KEY"] = "mJ1n2pQ0c0Xh4dI3sM2oq1xGzRrV6bqQk6m0tQh2Xq0="
os.environ["SOURCE_ALLOW_LOOPBACK"] = "true"
os.environ["SOURCE_MIN_BACKOFF_S"] = "0.2"
os.environ["SOURCE_MAX_ATTEMPTS"] = "3"
os.environ["SOURCE_TIMEOUT_S"] = "5"
os.environ["SOURCE_OVERDUE_GRACE_S"] = "2"
TEST_CA = trustme.CA()
with tempfile.NamedTemporaryFile(prefix="bulk-import-test-ca-", suffix=".pem", delete=False) as _ca_file:
    _ca_file.write(TEST_CA.cert_pem.bytes())
os.environ["SOURCE_CA_BUNDLE"] = _ca_file.name
atexit.register(os.unlink, _ca_file.name)
