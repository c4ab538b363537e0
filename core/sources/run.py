"""One attempt of a source's run: fetch, compare, review, then import, or stop and say why.

:func:`attempt_run` claims the run (one worker at a time; a claim abandoned
by a dead worker expires), fetches the source's file to a temporary folder
(streamed, within ``API_MAX_UPLOAD_BYTES``) and ends the run with one outcome:

- ``unchanged``: the file's SHA-256 is that of the file the source last
  imported; nothing else happens.
- ``blocked``: the review (``review_file``, the upload's own rules) finds the
  file not importable (a required column missing, no data rows, no valid
  row, an unreadable file), or, in sync mode, that the sweep guard would
  trip. No import is recorded, so nobody is deactivated and nothing waits for
  an approval that would sweep without applying rows; the run records why,
  and ``import.blocked`` is recorded for its webhooks in the same
  transaction. A guard block can be approved for that very file
  (``runs.approve_run``): the approved run imports it with
  ``allow_mass_deactivation``.
- ``imported``: the import is recorded as an upload's (``record_import``: one
  transaction) with the source and the file's name, then started or queued.
  Its idempotency key is the run's (``source-run-ID``), so a run attempted
  again after a crash finds its import instead of recording a second.
- ``failed``: the fetch kept failing (``FetchFailed``: retried with backoff,
  ``SOURCE_MIN_BACKOFF_S`` doubling, up to ``SOURCE_MAX_ATTEMPTS``), or can
  never succeed as it is (a host key other than the pinned one, refused
  credentials, a file over the limit): ``import.failed`` is recorded.

Until its last attempt a failing run stays pending with its next attempt's
time (``Attempted.next_at``, for the caller's delayed message). ``now`` is
the clock (the tests move it); every time written comes from it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from structlog.contextvars import bound_contextvars

from core import outbox, queues
from core.db import connection
from core.errors import ConfigurationError, FileRejected, SourceRefused, TooLarge, is_transient
from core.imports import start_next_import
from core.intake.options import ImportOptions, OptionError
from core.intake.reading import open_source
from core.intake.review import review_file
from core.intake.submit import ImportRequest, record_import
from core.settings import Settings
from core.sources import fetch_https, fetch_sftp
from core.sources.fetched import Fetched, FetchFailed
from core.sources.locations import parse_location
from core.sources.queries import QUERIES
from core.sources.runs import describe_run
from core.sources.vault import unseal
from core.vocabulary import EventType, RunOutcome, RunState, SourceKind
from core.webhooks.events import record_run_event

CLAIM_SOURCE_RUN = QUERIES["claim_source_run"]
SOURCE_RUN_DUE = QUERIES["source_run_due"]
SOURCE_FOR_RUN = QUERIES["source_for_run"]
RETRY_SOURCE_RUN = QUERIES["retry_source_run"]
FINISH_SOURCE_RUN = QUERIES["finish_source_run"]
LAST_IMPORTED_HASH = QUERIES["last_imported_hash"]
SOURCE_RUN = QUERIES["source_run"]

log = structlog.get_logger(__name__)

# A claim outlives the actor's time limit by this much before another worker may take over.
CLAIM_MARGIN_S = 60.0
EVENT_OF_OUTCOME = {RunOutcome.BLOCKED: EventType.IMPORT_BLOCKED, RunOutcome.FAILED: EventType.IMPORT_FAILED}


@dataclass(frozen=True)
class Attempted:
    """What one attempt did: the run's outcome once it has one; else ``next_at``, when it is
    due again (retrying, or the message came early), or neither (nothing to do)."""

    outcome: RunOutcome | None = None
    next_at: datetime | None = None
    import_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class _Ending:
    outcome: RunOutcome
    reason: str | None = None
    fetched: Fetched | None = None
    import_id: int | None = None
    would_deactivate: int | None = None


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The pause after the ``attempts``-th failed fetch: doubling from the minimum."""
    return timedelta(seconds=settings.source_min_backoff_s * 2 ** min(attempts - 1, 20))


async def attempt_run(settings: Settings, run_id: int, *, now: datetime | None = None) -> Attempted:
    """Attempt run ``run_id`` once if it is due (see the module's description)."""
    now = now or datetime.now(UTC)
    claim_s = settings.actor_time_limit_ms / 1000 + CLAIM_MARGIN_S
    async with connection(settings.database_url) as conn:
        claimed = await conn.fetchrow(CLAIM_SOURCE_RUN, run_id, now, claim_s)
        if claimed is None:
            due = await conn.fetchrow(SOURCE_RUN_DUE, run_id)
            if due is not None and due["state"] == RunState.PENDING and due["next_attempt_at"] > now:
                return Attempted(next_at=due["next_attempt_at"])
            return Attempted()
        source = await conn.fetchrow(SOURCE_FOR_RUN, claimed["source_id"])
        with bound_contextvars(source_run=run_id, source_id=source["id"], tenant=source["tenant_id"]):
            log.info("source.run.attempt", attempt=claimed["attempts"])
            with tempfile.TemporaryDirectory(prefix="bulk-import-source-") as folder:
                try:
                    ending = await _fetch_and_review(conn, settings, source, claimed, Path(folder), run_id)
                except FetchFailed as exc:
                    if claimed["attempts"] < settings.source_max_attempts:
                        return await _retry(conn, claimed, str(exc), settings, now)
                    reason = f"{exc} (gave up after {claimed['attempts']} attempts)"
                    ending = _Ending(RunOutcome.FAILED, reason)
                except (SourceRefused, TooLarge, ConfigurationError, OptionError) as exc:
                    ending = _Ending(RunOutcome.FAILED, str(exc))
                except Exception as exc:
                    # Nobody's fault (the database restarting): tried again like a fetch. A bug: the
                    # run ends failed rather than being taken up again every claim timeout for ever.
                    if is_transient(exc) and claimed["attempts"] < settings.source_max_attempts:
                        return await _retry(conn, claimed, f"{type(exc).__name__}: {exc}", settings, now)
                    log.exception("source.run.unexpected_error")
                    reason = (
                        f"an unexpected error stopped the run ({type(exc).__name__}): the workers' log has it"
                    )
                    ending = _Ending(RunOutcome.FAILED, reason)
            return await _finish(conn, run_id, ending, source, now)


async def _retry(
    conn: asyncpg.Connection, claimed: asyncpg.Record, reason: str, settings: Settings, now: datetime
) -> Attempted:
    """The run waits for its next attempt, the backoff later; the reason is kept as its last error."""
    due = now + backoff(claimed["attempts"], settings)
    await conn.execute(RETRY_SOURCE_RUN, claimed["id"], due, reason)
    log.warning("source.run.retrying", reason=reason, next_at=due.isoformat())
    return Attempted(next_at=due, reason=reason)


async def _fetch(source: asyncpg.Record, folder: Path, settings: Settings) -> Fetched:
    location = parse_location(source["url"])
    secrets = unseal(source["secret"], settings.source_secret_key)
    if location.kind == SourceKind.SFTP:
        return await fetch_sftp.fetch_sftp(location, secrets, source["host_key"], folder, settings)
    fetched = await fetch_https.fetch_https(location, secrets, source["header_name"], folder, settings)
    assert fetched is not None
    return fetched


async def _fetch_and_review(
    conn: asyncpg.Connection,
    settings: Settings,
    source: asyncpg.Record,
    claimed: asyncpg.Record,
    folder: Path,
    run_id: int,
) -> _Ending:
    if source["removed_at"] is not None:
        return _Ending(RunOutcome.FAILED, "the source was removed")
    fetched = await _fetch(source, folder, settings)
    log.info("source.run.fetched", file=fetched.name, bytes=fetched.size)
    if fetched.sha256 == await conn.fetchval(LAST_IMPORTED_HASH, source["id"]):
        return _Ending(RunOutcome.UNCHANGED, f"{fetched.name} is the file imported last time", fetched)
    options = ImportOptions.from_json(source["options"])
    approved = claimed["approved_sha256"] == fetched.sha256
    if approved:
        options = options.replace(allow_mass_deactivation=True)
    blocked = await _review(conn, fetched, source["tenant_id"], options, settings)
    if blocked is not None:
        return blocked
    request = ImportRequest(
        tenant=source["tenant_id"],
        options=options,
        idempotency_key=f"source-run-{run_id}",
        filename=fetched.name,
        source_id=source["id"],
    )
    try:
        with open_source(fetched.path, sheet=options.sheet) as opened:
            import_id = await record_import(conn, request, opened)
    except FileRejected as exc:  # the review let it through, the recording did not
        return _Ending(RunOutcome.BLOCKED, f"{fetched.name}: {exc}", fetched)
    started = await start_next_import(conn, source["tenant_id"])
    if started is not None:
        try:
            await outbox.dispatch_rows(conn, started)
        except queues.BROKER_ERRORS as exc:
            # Recorded and started, its rows not queued: the stalled-import recovery sends them.
            log.warning("source.run.dispatch_deferred", import_id=started, error=repr(exc))
    return _Ending(RunOutcome.IMPORTED, None, fetched, import_id)


async def _review(
    conn: asyncpg.Connection, fetched: Fetched, tenant: str, options: ImportOptions, settings: Settings
) -> _Ending | None:
    """The upload's review of the file; a blocked ending when it must not be imported as it is."""
    name = fetched.name
    try:
        review = await review_file(conn, fetched.path, tenant, options, changes_limit=0)
    except FileRejected as exc:
        return _Ending(RunOutcome.BLOCKED, f"{name}: {exc}", fetched)
    if not review["importable"]:
        return _Ending(RunOutcome.BLOCKED, f"{name}: {review['error']}", fetched)
    rows = review["rows"]
    if rows["valid"] == 0:
        first = review["errors"][0] if review["errors"] else None
        detail = f" (row {first['row']}, {first['column']}: {first['message']})" if first else ""
        return _Ending(
            RunOutcome.BLOCKED, f"{name}: none of its {rows['total']:,} rows can be imported{detail}", fetched
        )
    preview = review["preview"]
    if preview["would_block"] and not options.allow_mass_deactivation:
        share = preview["deactivate"] / preview["active"] if preview["active"] else 1.0
        would, active = preview["deactivate"], preview["active"]
        reason = (
            f"{name}: this sync would deactivate {would:,} of {active:,} active people ({share:.0%}),"
            f" more than the {settings.sweep_max_share:.0%} allowed without approval (SWEEP_MAX_SHARE):"
            " nothing was imported and nobody deactivated. If the file is right, approve it"
        )
        return _Ending(RunOutcome.BLOCKED, reason, fetched, would_deactivate=preview["deactivate"])
    return None


async def _finish(
    conn: asyncpg.Connection, run_id: int, ending: _Ending, source: asyncpg.Record, now: datetime
) -> Attempted:
    """End the run with its outcome, and its event when it stopped, in one transaction."""
    fetched = ending.fetched
    event = EVENT_OF_OUTCOME.get(ending.outcome)
    async with conn.transaction():
        finished = await conn.fetchval(
            FINISH_SOURCE_RUN,
            run_id,
            ending.outcome,
            ending.reason,
            fetched.name if fetched else None,
            fetched.size if fetched else None,
            fetched.sha256 if fetched else None,
            ending.import_id,
            now,
            ending.would_deactivate,
        )
        if finished is not None and event is not None:
            run = describe_run(await conn.fetchrow(SOURCE_RUN, run_id, None))
            await record_run_event(conn, run, event, _external_id(source["options"]))
    if finished is None:
        return Attempted()  # ended meanwhile (another worker took over an expired claim)
    log_method = log.info if ending.outcome in (RunOutcome.IMPORTED, RunOutcome.UNCHANGED) else log.warning
    log_method("source.run." + ending.outcome, reason=ending.reason, import_id=ending.import_id)
    if event is not None:
        await outbox.send_new_run_deliveries(conn, run_id, event)
    return Attempted(ending.outcome, import_id=ending.import_id, reason=ending.reason)


def _external_id(options: dict[str, Any]) -> str | None:
    value = options.get("external_id")
    return value if isinstance(value, str) else None
