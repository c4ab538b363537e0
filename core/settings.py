"""One settings object, read from the environment once.

Every tunable lives here with a default that works against local services, so
no other module reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache

from core.errors import ConfigurationError

DEFAULT_DATABASE_URL = "postgresql://127.0.0.1:5432/bulk_import"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SMTP_URL = "smtp://127.0.0.1:1025"


@dataclass(frozen=True)
class Settings:
    """Configuration of every process (CLI, producer, worker).

    Each attribute is read from the upper-cased environment variable of the
    same name (``database_url`` from ``DATABASE_URL``).
    """

    database_url: str = DEFAULT_DATABASE_URL
    # The broker: redis://… (or rediss://) or amqp://… (or amqps://, RabbitMQ).
    # Empty: REDIS_URL, which is what deployments before BROKER_URL set.
    broker_url: str = ""
    redis_url: str = DEFAULT_REDIS_URL
    smtp_url: str = DEFAULT_SMTP_URL
    # Prefix of every Redis key the broker writes; lets several deployments
    # (or test runs) share one Redis.
    redis_namespace: str = "bulk-import"
    # Share of a tenant's active people a sync sweep may deactivate without
    # --allow-mass-deactivation.
    sweep_max_share: float = 0.25
    # Database connections per worker process (row batches share them).
    db_pool_size: int = 8
    # Redis connections per process (the broker's pool): at least the worker's
    # threads plus its consumers (two per queue); callers wait when all are busy.
    redis_max_connections: int = 1_000
    # A dead worker's unacknowledged messages return to the queue after this
    # many milliseconds without a heartbeat (live workers beat on every broker
    # call, at least once a second), at the first queue maintenance after it.
    heartbeat_timeout_ms: int = 15_000
    # How many broker calls in a million run that maintenance. dramatiq's
    # default (1,000: one call in a thousand) brings a killed worker's messages
    # back only after minutes; one in ten costs a sorted-set read per call and
    # brings them back within seconds of the heartbeat timeout.
    broker_maintenance_chance: int = 100_000
    # An unfinished import with no progress for this long and no message of its
    # own left in Redis is stalled: housekeeping reports it and resumes it.
    stall_after_s: float = 120.0
    # A worker acknowledges finished messages in one Redis call per queue this
    # many milliseconds after the first of them finished (and when it stops);
    # a worker killed within that window has those messages redelivered.
    ack_flush_delay_ms: int = 2
    # The longest an idle worker consumer waits between two looks at its
    # queue: how late the next message of a quiet queue may start (dramatiq's
    # own is a second). Each look is one small Redis call.
    consumer_poll_ms: int = 100
    # Most rows one worker process applies in one transaction (group commit).
    row_batch_size: int = 200
    # An actor running longer than this is interrupted (and retried).
    actor_time_limit_ms: int = 600_000
    # How long a stopping worker process waits for its messages in progress
    # (passed to dramatiq by the Procfile's worker line as
    # --worker-shutdown-timeout); past it plus a few seconds the process is
    # ended. Keep it under the process manager's own stop timeout.
    worker_shutdown_timeout_ms: int = 20_000
    # Retries of a row whose database work failed transiently.
    row_max_retries: int = 8
    row_min_backoff_ms: int = 500
    # The producer pauses while the row queue holds more messages than this,
    # so Redis memory stays bounded whatever the file size.
    max_queue_backlog: int = 200_000
    # Row messages one import may have sent and not yet settled (queued,
    # prefetched or being applied); the dispatcher tops it up as rows settle.
    # It is what a small import of another tenant can find ahead of it in the
    # shared row queue, so it sets how soon that import starts; it must stay
    # above what keeps every worker thread busy on its own (the Procfile's
    # 2 processes prefetch up to 1,000 messages each, and the dispatcher tops
    # up about every second or two). 0: no cap.
    import_max_in_flight: int = 5_000
    # An import's replaced values are kept this many days after it ended, for
    # an undo (housekeeping forgets older ones); an undo of an older import
    # still deactivates the people it created and reactivates those it swept,
    # where untouched since, and reports the people it updated as kept.
    undo_retention_days: int = 30
    # People an undo handles in one transaction.
    undo_batch_size: int = 2_000
    # Invitations. SMTP_URL: smtp:// (plain, STARTTLS when offered),
    # smtp+starttls:// (STARTTLS required), smtps:// (implicit TLS); user and
    # password in the URL log in.
    mail_from: str = "Bulk Import <no-reply@example.com>"
    accept_base_url: str = "https://app.example.com/invites/accept"
    # E-mails per second across all worker processes (0: no limit).
    invite_rate_per_second: int = 20
    invite_max_retries: int = 8
    invite_min_backoff_ms: int = 1_000
    smtp_timeout_s: float = 30.0
    # An invite claimed for sending longer ago than this, and not marked sent,
    # is taken to be abandoned by a dead worker and may be sent again.
    invite_claim_timeout_s: int = 600
    # How often each worker process looks for work the broker may have lost
    # (overdue invite batches), and how late a batch must be to count.
    housekeeping_interval_s: float = 30.0
    invite_release_grace_s: float = 60.0
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    # The CLI speaks to people; its log lines are for when something is wrong.
    cli_log_level: str = "warning"
    # Largest CSV body the HTTP API accepts (413 beyond it), in bytes.
    api_max_upload_bytes: int = 200 * 1024 * 1024
    # Where the admins' pages keep an uploaded file between its upload and its
    # import (empty: a folder in the system's temporary directory); every web
    # process must see the same folder. Drafts older than DRAFT_MAX_AGE_S go.
    draft_dir: str = ""
    draft_max_age_s: int = 24 * 3600
    # Webhooks (issue 15). Each attempt's whole time (connect, send, read the
    # answer), after which it counts as failed.
    webhook_timeout_s: float = 10.0
    # A failed delivery is tried again WEBHOOK_MIN_BACKOFF_MS later, doubling
    # up to WEBHOOK_MAX_BACKOFF_MS between attempts, until the event is
    # WEBHOOK_MAX_AGE_S old (about three days) or, when not 0,
    # WEBHOOK_MAX_ATTEMPTS attempts were made; then it is dead (redeliver by hand).
    webhook_min_backoff_ms: int = 5_000
    webhook_max_backoff_ms: int = 6 * 3600 * 1000
    webhook_max_age_s: int = 3 * 24 * 3600
    webhook_max_attempts: int = 0
    # Webhook attempts one worker process makes at once (on its event loop,
    # never on the threads rows and invites run on); more come back a second later.
    webhook_concurrency: int = 32
    # How long a rotated-out signing secret still signs (both signatures sent).
    webhook_rotation_grace_s: int = 24 * 3600
    # A pending delivery this late with no attempt in progress lost its message
    # (Redis, a worker's crash): housekeeping sends it again.
    webhook_overdue_grace_s: float = 60.0
    # http:// URLs and loopback addresses (for tests and local use only);
    # private and link-local addresses are refused whatever this says.
    webhook_allow_loopback: bool = False
    # Prefix of the links in an event (status and errors URLs), e.g.
    # https://imports.example.com; empty: links are paths (/api/imports/42).
    public_base_url: str = ""
    # Scheduled sources (issue 26). The Fernet keys (comma-separated, the first
    # encrypts, every one decrypts: rotation) the sources' secrets are stored
    # encrypted with; empty: no source with a secret can be saved.
    source_secret_key: str = ""
    # Loopback addresses for a source's SFTP or HTTPS server (tests and local
    # use only); private and link-local addresses are refused whatever this says.
    source_allow_loopback: bool = False
    # A PEM bundle of extra certificate authorities trusted for HTTPS sources,
    # besides the system's (a test CA; empty: the system's only).
    source_ca_bundle: str = ""
    # Connecting to a source's server, and each read of its file, within this.
    source_timeout_s: float = 30.0
    # A fetch that fails is tried again SOURCE_MIN_BACKOFF_S later, doubling,
    # until SOURCE_MAX_ATTEMPTS attempts were made: then the run failed.
    source_max_attempts: int = 5
    source_min_backoff_s: float = 60.0
    # An unfinished run this late with no attempt in progress lost its message
    # (Redis, a worker's crash): housekeeping sends it again.
    source_overdue_grace_s: float = 60.0
    # GET /metrics without a token (for a scraper on a private network);
    # otherwise it wants an operator token like the dashboard.
    metrics_public: bool = False
    # SCIM (issue 25): a write is an import that the answer waits for, at most
    # this long; past it the answer is 503 with Retry-After (the import goes on,
    # and the identity provider's retry finds its work done).
    scim_wait_s: float = 10.0

    @property
    def broker_address(self) -> str:
        """The broker's URL: BROKER_URL, else REDIS_URL."""
        return self.broker_url or self.redis_url

    @property
    def broker_kind(self) -> str:
        """``"redis"`` or ``"rabbitmq"``, by the broker URL's scheme (anything else: ``"unknown"``)."""
        scheme = self.broker_address.partition("://")[0].lower()
        if scheme in ("redis", "rediss", "unix"):
            return "redis"
        return "rabbitmq" if scheme in ("amqp", "amqps") else "unknown"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(field.name.upper())
            if raw is None or raw == "":
                continue
            default = field.default
            try:
                if isinstance(default, bool):
                    values[field.name] = raw.lower() in {"1", "true", "yes", "on"}
                elif isinstance(default, int):
                    values[field.name] = int(raw)
                elif isinstance(default, float):
                    values[field.name] = float(raw)
                else:
                    values[field.name] = raw
            except ValueError:
                raise ConfigurationError(
                    f"{field.name.upper()}={raw!r} is not a valid {type(default).__name__}"
                ) from None
        settings = cls(**values)  # type: ignore[arg-type]
        if not 0 <= settings.sweep_max_share <= 1:
            raise ConfigurationError("SWEEP_MAX_SHARE must be between 0 and 1 (0.25 = 25%)")
        if not 0 <= settings.broker_maintenance_chance <= 1_000_000:
            raise ConfigurationError(
                "BROKER_MAINTENANCE_CHANCE must be between 0 and 1000000 (broker calls in a million)"
            )
        if settings.broker_kind not in ("redis", "rabbitmq"):
            raise ConfigurationError(
                f"BROKER_URL={settings.broker_address!r}: a broker URL starts redis://, rediss://, "
                "amqp:// or amqps://"
            )
        if settings.import_max_in_flight < 0:
            raise ConfigurationError("IMPORT_MAX_IN_FLIGHT must be 0 (no cap) or a number of rows")
        if settings.undo_retention_days < 0 or settings.undo_batch_size < 1:
            raise ConfigurationError("UNDO_RETENTION_DAYS must be 0 or more, UNDO_BATCH_SIZE 1 or more")
        positive = (settings.webhook_min_backoff_ms, settings.webhook_timeout_s, settings.webhook_concurrency)
        if min(positive) <= 0:
            raise ConfigurationError(
                "WEBHOOK_MIN_BACKOFF_MS, WEBHOOK_TIMEOUT_S and WEBHOOK_CONCURRENCY must be above 0"
            )
        if settings.scim_wait_s <= 0:
            raise ConfigurationError("SCIM_WAIT_S must be above 0 (seconds)")
        if settings.source_max_attempts < 1 or settings.source_min_backoff_s < 0:
            raise ConfigurationError("SOURCE_MAX_ATTEMPTS must be 1 or more, SOURCE_MIN_BACKOFF_S 0 or more")
        return settings


@cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings.from_env()


def configured_url(name: str) -> str | None:
    """The URL set in environment variable ``name``, or None when it is unset or empty."""
    return os.environ.get(name) or None


def use_services(database_url: str, redis_url: str, broker_url: str = "") -> Settings:
    """Point this process, and the processes it starts, at the given services."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["REDIS_URL"] = redis_url
    os.environ["BROKER_URL"] = broker_url
    get_settings.cache_clear()
    return get_settings()
