"""Where a source fetches from: its URL, checked once, split into what the fetchers need.

``sftp://USER@HOST[:PORT]/PATH-OR-GLOB`` (the path as the server sees it;
``/~/`` starts it in the user's home; a glob such as ``exports/people-*.csv``
takes the newest matching file) or ``https://HOST[:PORT]/PATH``. Credentials
never go in the URL (it is shown and logged): a password, key or header
value is a secret of its own.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from dataclasses import dataclass

from core.addresses import AddressRule
from core.errors import SourceRefused
from core.vocabulary import SourceKind

MAX_URL_CHARS = 2_000
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Location:
    """A source's URL, split: its kind, host, port, user (SFTP) and path."""

    url: str
    kind: SourceKind
    host: str
    port: int
    user: str | None
    path: str

    @property
    def folder(self) -> str:
        """SFTP: the folder the path or glob is in ('.' for the home folder)."""
        return posixpath.dirname(self.path) or "."

    @property
    def pattern(self) -> str:
        """SFTP: the file's name, or the glob its name must match."""
        return posixpath.basename(self.path)

    @property
    def is_glob(self) -> bool:
        """The path's file name is a pattern: the newest matching file is taken."""
        return any(c in _GLOB_CHARS for c in self.pattern)


def parse_location(url: str) -> Location:
    """The URL checked and split; ``SourceRefused`` saying what a source's URL looks like."""
    if len(url) > MAX_URL_CHARS:
        raise SourceRefused(f"the URL is over {MAX_URL_CHARS} characters")
    parts = urllib.parse.urlsplit(url.strip())
    example = "sftp://user@host:22/exports/people-*.csv or https://host/exports/people.csv"
    if parts.scheme not in tuple(SourceKind) or not parts.hostname:
        raise SourceRefused(f"{url!r} is not a source's URL: write {example}")
    if parts.password:
        raise SourceRefused(
            f"{parts.scheme}://{parts.username}:***@… carries a password: give it apart"
            " (--password-stdin, the form's password field), never in the URL"
        )
    try:
        port = parts.port
    except ValueError:
        raise SourceRefused(f"{url!r} has an invalid port") from None
    kind = SourceKind(parts.scheme)
    path = urllib.parse.unquote(parts.path)
    if kind == SourceKind.HTTPS:
        if parts.username:
            raise SourceRefused(f"{url!r} carries a user name: give credentials as a header (--header)")
        return Location(url.strip(), kind, parts.hostname, port or 443, None, parts.path or "/")
    if not parts.username:
        raise SourceRefused(f"{url!r} names no user: write sftp://USER@{parts.hostname}/PATH")
    if path.startswith("/~/"):
        path = path[3:]
    if not posixpath.basename(path):
        raise SourceRefused(f"{url!r} names a folder: end it with the file's name or a glob (people-*.csv)")
    return Location(url.strip(), kind, parts.hostname, port or 22, urllib.parse.unquote(parts.username), path)


SOURCE_ADDRESSES = AddressRule(
    SourceRefused, "sources are fetched from public addresses only", "SOURCE_ALLOW_LOOPBACK"
)
"""The address rule of the sources' servers (SFTP and HTTPS alike: the same SSRF risk)."""
