"""What a fetch brings back (a file on disk, its name, size and SHA-256), and how it fails.

Both fetchers (``fetch_sftp``, ``fetch_https``) write what they read through a
:class:`Sink`: chunk by chunk to a file, hashing as it goes, and refusing to
go past the size limit (``API_MAX_UPLOAD_BYTES``, the uploads' own), so a file
of any size costs a chunk of memory and a too-large one stops at the limit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from core.errors import BulkImportError, TooLarge


class FetchFailed(BulkImportError):
    """The source's server could not be reached, refused us, or has no such file: tried again later."""

    transient = True


@dataclass(frozen=True)
class Fetched:
    """A file fetched to ``path``: its name at the source, size and SHA-256."""

    path: Path
    name: str
    size: int
    sha256: bytes


def too_large(name: str, limit: int) -> TooLarge:
    """The error of a file over the limit."""
    return TooLarge(
        f"{name} is over the {limit / 1024 / 1024:g} MB an import may be (API_MAX_UPLOAD_BYTES): "
        "nothing was imported"
    )


class Sink:
    """A file being written from a stream: hashed, counted, stopped at ``limit`` bytes."""

    def __init__(self, path: Path, name: str, limit: int) -> None:
        self.path, self.name, self.limit = path, name, limit
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = None

    def __enter__(self) -> Sink:
        self._file = self.path.open("wb")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._file is not None
        self._file.close()
        if kind is not None:
            self.path.unlink(missing_ok=True)  # nothing half-fetched stays behind

    def write(self, chunk: bytes) -> None:
        """Append a chunk; ``TooLarge`` past the limit."""
        assert self._file is not None
        self.size += len(chunk)
        if self.size > self.limit:
            raise too_large(self.name, self.limit)
        self._hash.update(chunk)
        self._file.write(chunk)

    def fetched(self) -> Fetched:
        """What was written, once complete."""
        return Fetched(self.path, self.name, self.size, self._hash.digest())
