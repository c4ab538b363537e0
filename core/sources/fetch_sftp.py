"""Fetching a source's file over SFTP (asyncssh): the server's key pinned, the newest match streamed.

The host is resolved and checked like a webhook's (``core.addresses``: public
addresses only, loopback with ``SOURCE_ALLOW_LOOPBACK``) and the connection
goes to the very address checked. The server must present the host key
pinned when the source was saved, and nothing else: no known_hosts file, no
SSH config, agent or keys of the machine the worker runs on are used, only
the source's own password or private key. A path names a file; a glob
(``people-*.csv``) takes the newest regular file matching it (by modification
time, then name). The file streams to disk in chunks, within the size limit.

Failures say what to do. Unreachable, timed out, or no such file (yet):
``FetchFailed``, retried. A host key that is not the pinned one, or refused
credentials: ``SourceRefused``, not retried (the same attempt cannot succeed).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

from core.addresses import public_address
from core.errors import SourceRefused
from core.settings import Settings
from core.sources.fetched import Fetched, FetchFailed, Sink, too_large
from core.sources.locations import SOURCE_ADDRESSES, Location
from core.sources.vault import Secrets

with warnings.catch_warnings():
    # asyncssh still imports DSA support, which cryptography deprecates; we never use DSA.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

CHUNK = 256 * 1024
# asyncssh logs a dozen lines per connection at info (addresses, algorithms); ours say what matters.
logging.getLogger("asyncssh").setLevel(logging.WARNING)


@dataclass(frozen=True)
class HostKey:
    """A server's public key (OpenSSH form, as pinned) and its SHA256 fingerprint (as shown)."""

    public_key: str
    fingerprint: str


@dataclass(frozen=True)
class RemoteFile:
    """The file a path or glob resolved to on the server."""

    path: str
    size: int
    mtime: int


def host_key_of(public_key: str) -> HostKey:
    """A pinned key read back, with its fingerprint."""
    key = asyncssh.import_public_key(public_key)
    return HostKey(public_key, key.get_fingerprint("sha256"))


async def _address(location: Location, settings: Settings) -> str:
    return await public_address(
        location.host, location.port, settings.source_allow_loopback, SOURCE_ADDRESSES
    )


async def server_host_key(location: Location, settings: Settings) -> HostKey:
    """The key the server presents (no login), for the admin to compare and pin."""
    address = await _address(location, settings)
    try:
        async with asyncio.timeout(settings.source_timeout_s):
            key = await asyncssh.get_server_host_key(address, location.port)
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise FetchFailed(
            f"{location.host}:{location.port} did not answer as an SSH server ({_why(exc)})"
        ) from None
    if key is None:
        raise FetchFailed(f"{location.host}:{location.port} presented no host key")
    return HostKey(key.export_public_key().decode("ascii").strip(), key.get_fingerprint("sha256"))


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time (SOURCE_TIMEOUT_S)"
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _options(location: Location, secrets: Secrets, host_key: str, timeout_s: float) -> dict[str, Any]:
    pinned = asyncssh.import_public_key(host_key)
    keys = [asyncssh.import_private_key(secrets.private_key)] if secrets.private_key else None
    return {
        "username": location.user,
        "password": secrets.password,
        "client_keys": keys,
        # Only the pinned key is trusted; nothing of the worker's machine is read.
        "known_hosts": ([pinned], [], []),
        "agent_path": None,
        "config": None,
        "connect_timeout": timeout_s,
        "login_timeout": timeout_s,
    }


async def _connect(location: Location, secrets: Secrets, host_key: str, settings: Settings) -> Any:
    address = await _address(location, settings)
    where = f"{location.host}:{location.port}"
    try:
        return await asyncssh.connect(
            address, location.port, **_options(location, secrets, host_key, settings.source_timeout_s)
        )
    except asyncssh.HostKeyNotVerifiable:
        raise SourceRefused(
            f"{where} presented a host key other than the one pinned ({host_key_of(host_key).fingerprint}):"
            " nothing was fetched. If the server's key really changed, save the source again with its new key"
        ) from None
    except asyncssh.PermissionDenied:
        raise SourceRefused(
            f"{where} refused the login of {location.user!r}: check the source's password or key"
        ) from None
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        raise FetchFailed(f"{where} could not be reached ({_why(exc)})") from None


async def _resolve(sftp: Any, location: Location) -> RemoteFile:
    """The file the location names, or the newest one its glob matches."""
    if not location.is_glob:
        try:
            attrs = await sftp.stat(location.path)
        except asyncssh.SFTPError as exc:
            raise FetchFailed(f"{location.path} is not on the server ({exc.reason})") from None
        return RemoteFile(location.path, attrs.size or 0, attrs.mtime or 0)
    try:
        names = await sftp.readdir(location.folder)
    except asyncssh.SFTPError as exc:
        raise FetchFailed(
            f"the folder {location.folder} of {location.path} is not on the server ({exc.reason})"
        ) from None
    matching = [
        n
        for n in names
        if fnmatch.fnmatchcase(n.filename, location.pattern)
        and n.attrs.permissions is not None
        and stat.S_ISREG(n.attrs.permissions)
    ]
    if not matching:
        raise FetchFailed(f"no file matches {location.path} on the server (yet)")
    newest = max(matching, key=lambda n: (n.attrs.mtime or 0, n.filename))
    path = f"{location.folder}/{newest.filename}" if location.folder != "." else newest.filename
    return RemoteFile(path, newest.attrs.size or 0, newest.attrs.mtime or 0)


async def find_file(location: Location, secrets: Secrets, host_key: str, settings: Settings) -> RemoteFile:
    """Log in and resolve the path or glob (the connection test); fetch nothing."""
    async with await _connect(location, secrets, host_key, settings) as ssh, ssh.start_sftp_client() as sftp:
        return await _resolve(sftp, location)


async def fetch_sftp(
    location: Location, secrets: Secrets, host_key: str, folder: Path, settings: Settings
) -> Fetched:
    """Fetch the newest file the location names into ``folder``, streaming, within the size limit."""
    limit = settings.api_max_upload_bytes
    async with await _connect(location, secrets, host_key, settings) as ssh, ssh.start_sftp_client() as sftp:
        remote = await _resolve(sftp, location)
        name = remote.path.rsplit("/", 1)[-1]
        if remote.size > limit:
            raise too_large(name, limit)
        try:
            async with sftp.open(remote.path, "rb") as handle:
                with Sink(folder / "fetched", name, limit) as sink:
                    while chunk := await asyncio.wait_for(handle.read(CHUNK), settings.source_timeout_s):
                        sink.write(chunk)
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            raise FetchFailed(f"reading {remote.path} failed ({_why(exc)})") from None
    return sink.fetched()


def check_private_key(text: str) -> None:
    """Refuse a private key that cannot be read (or is protected by a passphrase)."""
    try:
        asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError):
        raise SourceRefused(
            "the private key cannot be read: give an unencrypted OpenSSH or PEM private key file"
        ) from None
