"""A tenant's sources: add (the server's host key pinned), list, show, test, pause, resume, remove.

The CLI (``bulk-import source``), the HTTP API (``/api/sources``) and the
admins' "Automatic imports" pages all come here. Adding checks everything
that can be checked without logging in: the URL's form and address, the
schedule, the import's options, the private key's form; for SFTP the
server's key is read and must match the fingerprint the admin confirmed
(``--host-key SHA256:…``, or ``--accept-host-key`` for whatever it presents);
without either nothing is saved and :class:`HostKeyToConfirm` carries the
fingerprint to show. Secrets are sealed (``core.sources.vault``) before
they reach the database and are never returned. ``test_source`` logs in and
resolves the path (or GETs the URL's headers), fetching nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from core.addresses import public_address
from core.errors import BulkImportError, SourceNotFound, SourceRefused
from core.intake.options import ImportOptions, OptionError
from core.settings import Settings
from core.sources import fetch_https, fetch_sftp
from core.sources.locations import SOURCE_ADDRESSES, Location, parse_location
from core.sources.queries import QUERIES
from core.sources.schedule import check_schedule, next_tick
from core.sources.vault import Secrets, seal, unseal
from core.tenants import find_tenant, tenant_timezone
from core.vocabulary import InviteOption, SourceKind

INSERT_SOURCE = QUERIES["insert_source"]
SOURCE_OF_TENANT = QUERIES["source_of_tenant"]
SOURCES_OF_TENANT = QUERIES["sources_of_tenant"]
SOURCE_FOR_RUN = QUERIES["source_for_run"]
PAUSE_SOURCE = QUERIES["pause_source"]
RESUME_SOURCE = QUERIES["resume_source"]
REMOVE_SOURCE = QUERIES["remove_source"]

log = structlog.get_logger(__name__)

MAX_NAME_CHARS = 100
SOURCES_LISTED = 1_000
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}")


class HostKeyToConfirm(BulkImportError):
    """The SFTP server's key was read but not confirmed: nothing saved; ``fingerprint`` is what to check."""

    exit_code = 4

    def __init__(self, fingerprint: str, message: str) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


@dataclass(frozen=True, kw_only=True)
class NewSource:
    """What an admin asks for: a named source of a tenant, where it fetches from, when, and how it imports.

    ``host_key``: the SHA256 fingerprint the admin expects of an SFTP server
    (``accept_host_key``: whatever it presents). ``schedule``: cron or
    ``every N hours``; None: runs only when asked.
    """

    tenant: str
    name: str
    url: str
    secrets: Secrets = field(default_factory=Secrets)
    header_name: str | None = None
    host_key: str | None = None
    accept_host_key: bool = False
    schedule: str | None = None
    options: ImportOptions = field(default_factory=ImportOptions)


def describe(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """A source as shown everywhere: never its secrets, only whether it has some."""
    last = None
    if row["run_id"] is not None:
        last = {
            "id": row["run_id"],
            "state": row["run_state"],
            "outcome": row["run_outcome"],
            "reason": row["run_reason"],
            "import_id": row["run_import_id"],
            "file": row["run_filename"],
            "created_at": row["run_created_at"].isoformat(),
            "finished_at": row["run_finished_at"].isoformat() if row["run_finished_at"] else None,
        }
    return {
        "id": row["id"],
        "tenant": row["tenant_id"],
        "name": row["name"],
        "kind": row["kind"],
        "url": row["url"],
        "host_key": row["host_key_fingerprint"],
        "header": row["header_name"],
        "has_secret": row["has_secret"],
        "options": row["options"],
        "schedule": row["schedule"],
        "next_run_at": row["next_run_at"].isoformat() if row["next_run_at"] else None,
        "paused": row["paused"],
        "created_at": row["created_at"].isoformat(),
        "last_run": last,
    }


def check_source_options(options: ImportOptions) -> ImportOptions:
    """The import's options as a schedule can use them (invitations at one fixed time fit no nightly run)."""
    if options.invites == InviteOption.AT:
        raise OptionError(
            "invites", "at a fixed time does not fit a source that imports again and again: none or now"
        )
    return options


def _check_new(new: NewSource, location: Location) -> None:
    if not 1 <= len(new.name.strip()) <= MAX_NAME_CHARS or not new.name.isprintable():
        raise BulkImportError(f"a source's name is 1 to {MAX_NAME_CHARS} printable characters")
    secrets = new.secrets
    if location.kind == SourceKind.SFTP:
        if new.header_name or secrets.header_value:
            raise BulkImportError(
                "a header is for HTTPS sources; an SFTP source logs in with a password or key"
            )
        if not (secrets.password or secrets.private_key):
            raise BulkImportError(
                "an SFTP source needs a password (--password-stdin) or a private key (--key FILE)"
            )
        if secrets.private_key:
            fetch_sftp.check_private_key(secrets.private_key)
    else:
        if secrets.password or secrets.private_key:
            raise BulkImportError(
                "an HTTPS source sends a header (--header 'Authorization: …'), not a password"
            )
        if new.header_name is not None and not _HEADER_NAME.fullmatch(new.header_name):
            raise BulkImportError(f"{new.header_name!r} is not a header name (e.g. Authorization)")
        if bool(new.header_name) != bool(secrets.header_value):
            raise BulkImportError("a header needs a name and a value: --header 'Authorization: Bearer …'")


async def _pin(new: NewSource, location: Location, settings: Settings) -> fetch_sftp.HostKey | None:
    """The SFTP server's key, once confirmed (HostKeyToConfirm otherwise); None for HTTPS."""
    if location.kind != SourceKind.SFTP:
        await public_address(location.host, location.port, settings.source_allow_loopback, SOURCE_ADDRESSES)
        return None
    key = await fetch_sftp.server_host_key(location, settings)
    where = f"{location.host}:{location.port}"
    if new.accept_host_key or (new.host_key and new.host_key.strip() == key.fingerprint):
        return key
    if new.host_key:
        raise SourceRefused(
            f"{where} presents the host key {key.fingerprint}, not {new.host_key.strip()}: nothing was saved."
            " Ask the server's administrator which key is right"
        )
    raise HostKeyToConfirm(
        key.fingerprint,
        f"{where} presents the host key {key.fingerprint}: check it with the server's administrator, then"
        f" add the source again with --host-key {key.fingerprint} (or --accept-host-key). Nothing was saved",
    )


async def add_source(
    conn: asyncpg.Connection, new: NewSource, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Save ``new`` (checked, its host key pinned, its secrets sealed); return it as shown."""
    location = parse_location(new.url)
    _check_new(new, location)
    schedule = check_schedule(new.schedule)
    options = check_source_options(new.options)
    if await find_tenant(conn, new.tenant) is None:
        raise BulkImportError(
            f"no tenant {new.tenant!r}: a tenant exists once it has imported a file"
            " (or been set with `bulk-import tenant set`)"
        )
    sealed = seal(new.secrets, settings.source_secret_key)
    key = await _pin(new, location, settings)
    following = next_tick(schedule, await tenant_timezone(conn, new.tenant), now, now)
    try:
        source_id = await conn.fetchval(
            INSERT_SOURCE,
            new.tenant,
            new.name.strip(),
            location.kind,
            location.url,
            key.public_key if key else None,
            key.fingerprint if key else None,
            new.header_name,
            sealed,
            options.to_json(),
            schedule,
            now,
            following,
        )
    except asyncpg.UniqueViolationError:
        raise BulkImportError(
            f"tenant {new.tenant!r} has a source named {new.name.strip()!r} already"
        ) from None
    log.info("source.added", tenant=new.tenant, source_id=source_id, kind=location.kind, host=location.host)
    return await get_source(conn, new.tenant, source_id)


async def get_source(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str | None, source_id: int
) -> dict[str, Any]:
    """Source ``source_id`` of the tenant (None: any tenant's), as shown; ``SourceNotFound`` otherwise."""
    row = await conn.fetchrow(SOURCE_OF_TENANT, source_id, tenant)
    if row is None:
        scope = f" for tenant {tenant!r}" if tenant else ""
        raise SourceNotFound(f"no source {source_id}{scope}: see `bulk-import source list`")
    return describe(row)


async def list_sources(conn: asyncpg.Connection | asyncpg.Pool, tenant: str | None) -> list[dict[str, Any]]:
    """The tenant's sources (None: every tenant's), each with its last run."""
    return [describe(r) for r in await conn.fetch(SOURCES_OF_TENANT, tenant, SOURCES_LISTED)]


async def pause_source(conn: asyncpg.Connection, tenant: str, source_id: int, now: datetime) -> None:
    """No more ticks until resumed (a run under way finishes)."""
    if await conn.fetchval(PAUSE_SOURCE, source_id, tenant, now) is None:
        raise SourceNotFound(f"no source {source_id} for tenant {tenant!r}")
    log.info("source.paused", tenant=tenant, source_id=source_id)


async def resume_source(conn: asyncpg.Connection, tenant: str, source_id: int, now: datetime) -> None:
    """Ticks again, from the next one after now (those missed while paused do not run)."""
    source = await get_source(conn, tenant, source_id)
    row = await conn.fetchrow(SOURCE_FOR_RUN, source_id)
    timezone = await tenant_timezone(conn, tenant)
    following = next_tick(source["schedule"], timezone, row["schedule_from"], now)
    await conn.fetchval(RESUME_SOURCE, source_id, tenant, following, now)
    log.info("source.resumed", tenant=tenant, source_id=source_id)


async def remove_source(conn: asyncpg.Connection, tenant: str, source_id: int, now: datetime) -> None:
    """Never run again; its secret erased; its runs and imports stay in the history."""
    if await conn.fetchval(REMOVE_SOURCE, source_id, tenant, now) is None:
        raise SourceNotFound(f"no source {source_id} for tenant {tenant!r}")
    log.info("source.removed", tenant=tenant, source_id=source_id)


async def test_source(
    conn: asyncpg.Connection, tenant: str | None, source_id: int, settings: Settings
) -> str:
    """Log in and resolve the path (SFTP) or GET the URL (HTTPS), fetching nothing; say what was found.

    Raises ``FetchFailed`` (cannot reach, no such file) or ``SourceRefused``
    (a host key other than the pinned one, refused credentials) with the reason.
    """
    await get_source(conn, tenant, source_id)
    row = await conn.fetchrow(SOURCE_FOR_RUN, source_id)
    location = parse_location(row["url"])
    secrets = unseal(row["secret"], settings.source_secret_key)
    if location.kind == SourceKind.HTTPS:
        await fetch_https.fetch_https(location, secrets, row["header_name"], None, settings)
        return f"{location.host} answered 200 for {location.url}"
    found = await fetch_sftp.find_file(location, secrets, row["host_key"], settings)
    fingerprint = fetch_sftp.host_key_of(row["host_key"]).fingerprint
    return (
        f"logged in to {location.host}:{location.port} as {location.user} (host key {fingerprint});"
        f" {location.path} is {found.path} ({found.size:,} bytes)"
    )
