"""An admin's upload between the file's arrival and its import: a *draft*.

The admins' pages take a file in several steps (columns, review, settings),
so the file waits on disk, in a folder of its own under ``DRAFT_DIR`` named by
a random id (128 bits: not guessable), with ``draft.json`` saying whose it is
and what was chosen so far, and the reviews already computed for it. A draft
of another tenant is "not found", like one that does not exist. Drafts are
removed when their import starts, and any older than ``DRAFT_MAX_AGE_S`` when
a new one is made.

The upload is a browser's ``multipart/form-data`` POST, parsed by Starlette's
streaming parser: the file part is spooled to disk past 1 MB, never held in
memory, and the body is counted against ``API_MAX_UPLOAD_BYTES`` as it arrives.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from core.errors import BulkImportError, TooLarge
from core.settings import Settings

_DRAFT_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_FILE = "upload"
_META = "draft.json"


class DraftNotFound(BulkImportError):
    """No such upload for this tenant (expired, started, or never made)."""


class UploadRefused(BulkImportError):
    """The upload cannot be taken; the message says why and what to do."""


class UploadTooLarge(UploadRefused, TooLarge):
    """The upload is over ``API_MAX_UPLOAD_BYTES``."""


@dataclass
class Draft:
    """An uploaded file waiting for its import, and what the admin chose so far."""

    id: str
    tenant: str
    filename: str
    size: int
    created_at: float
    choices: dict[str, str | None] | None = None
    reviews: dict[str, str] = field(default_factory=dict)  # review key → file name in the folder

    def folder(self, settings: Settings) -> Path:
        return drafts_root(settings) / self.id

    def file(self, settings: Settings) -> Path:
        return self.folder(settings) / _FILE


def drafts_root(settings: Settings) -> Path:
    """The folder holding every draft (made on first use, readable by this user only)."""
    root = Path(settings.draft_dir or os.path.join(tempfile.gettempdir(), "bulk-import-drafts"))
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def _save(draft: Draft, settings: Settings) -> None:
    target = draft.folder(settings) / _META
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(draft)), encoding="utf-8")
    partial.replace(target)  # atomic: a reader never sees half a file


def load_draft(settings: Settings, draft_id: str, tenant: str) -> Draft:
    """The draft ``draft_id`` of ``tenant``; DraftNotFound for any other."""
    missing = DraftNotFound(
        "This upload is no longer here: it was imported, or it expired. Upload the file again."
    )
    if not _DRAFT_ID.fullmatch(draft_id):
        raise missing
    try:
        data = json.loads((drafts_root(settings) / draft_id / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise missing from None
    draft = Draft(**data)
    if draft.tenant != tenant or time.time() - draft.created_at > settings.draft_max_age_s:
        raise missing
    return draft


def choose_columns(draft: Draft, settings: Settings, choices: dict[str, str | None]) -> None:
    """Record the admin's column choices; earlier reviews no longer apply."""
    draft.choices = choices
    for name in draft.reviews.values():
        (draft.folder(settings) / name).unlink(missing_ok=True)
    draft.reviews = {}
    _save(draft, settings)


def review_key(*parts: str) -> str:
    """A short, file-name-safe key for one review of a draft (its options)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def cached_review(draft: Draft, settings: Settings, key: str) -> dict[str, Any] | None:
    """A review of this draft made earlier with the same options, if kept."""
    name = draft.reviews.get(key)
    if name is None:
        return None
    try:
        review: dict[str, Any] = json.loads((draft.folder(settings) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return review


def keep_review(draft: Draft, settings: Settings, key: str, review: dict[str, Any]) -> None:
    """Keep a review of this draft, so the review's pages and the settings reuse it."""
    name = f"review-{key}.json"
    (draft.folder(settings) / name).write_text(json.dumps(review), encoding="utf-8")
    draft.reviews[key] = name
    _save(draft, settings)


def discard(draft: Draft, settings: Settings) -> None:
    """Remove a draft and its file (its import has the rows now)."""
    shutil.rmtree(draft.folder(settings), ignore_errors=True)


def _expire(settings: Settings) -> None:
    root = drafts_root(settings)
    cutoff = time.time() - settings.draft_max_age_s
    for folder in root.iterdir():
        if _DRAFT_ID.fullmatch(folder.name) and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


async def _counted(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"The file is larger than {limit / 1024 / 1024:,.0f} MB, the most this page takes."
        " Split it into smaller files, or ask for it to be imported with the command line."
    )


async def receive_upload(request: Request, settings: Settings, tenant: str) -> tuple[Draft, str]:
    """Take a browser's upload (form field ``file``) as a new draft of ``tenant``.

    Returns the draft and the form's ``csrf`` field, which the caller checks
    (the form is only readable once the whole body has arrived).
    """
    limit = settings.api_max_upload_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + 64 * 1024:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadRefused("Choose a file to upload (the form was sent without one).")
    _expire(settings)
    parser = MultiPartParser(request.headers, _counted(request.stream(), limit), max_files=1, max_fields=4)
    try:
        form = await parser.parse()
    except MultiPartException as broken:
        raise UploadRefused(f"The upload did not arrive whole ({broken.message}): try again.") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise UploadRefused("Choose a file to upload first.")
        draft = Draft(
            id=secrets.token_urlsafe(16),
            tenant=tenant,
            filename=os.path.basename(upload.filename.replace("\\", "/"))[:255],
            size=upload.size or 0,
            created_at=time.time(),
        )
        folder = draft.folder(settings)
        folder.mkdir(mode=0o700)
        with open(folder / _FILE, "wb") as out:
            await upload.seek(0)
            while chunk := await upload.read(1024 * 1024):
                out.write(chunk)
        if draft.size == 0:
            shutil.rmtree(folder, ignore_errors=True)
            raise UploadRefused(f"{draft.filename} is empty: choose the file with your people in it.")
        _save(draft, settings)
        csrf = form.get("csrf")
        return draft, csrf if isinstance(csrf, str) else ""
    finally:
        await form.close()
