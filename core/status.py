"""An import's status JSON, the contract of ``status --json``, ``GET /api/imports/{id}``
and the ``import`` of every webhook event.

Lives in the worker because the worker writes it into each event, in the
transaction that changes the import's state (``core.webhooks.events``); the producer's
readers (``producer.reports``) return the same document.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from core.db import QUERIES
from core.errors import ImportNotFound
from core.settings import get_settings
from core.undo import undo_counts

STATUS_OF_IMPORT = QUERIES["status_of_import"]
STATUS_ROW_COUNTS = QUERIES["status_row_counts"]
STALLED_IMPORT_CANDIDATES = QUERIES["stalled_import_candidates"]
STATUS_INVITE_COUNTS = QUERIES["status_invite_counts"]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def import_status(conn: asyncpg.Connection, import_id: int) -> dict[str, Any]:
    """The status JSON of import ``import_id``, as this connection sees it."""
    imp = await conn.fetchrow(STATUS_OF_IMPORT, import_id)
    if imp is None:
        raise ImportNotFound(f"no import {import_id}")
    counts = await conn.fetchrow(STATUS_ROW_COUNTS, import_id)
    stalled = await conn.fetch(STALLED_IMPORT_CANDIDATES, get_settings().stall_after_s, import_id)
    invites = await conn.fetchrow(STATUS_INVITE_COUNTS, import_id)
    valid = imp["total_rows"] - imp["invalid_rows"]
    settled = sum(counts.values())
    return {
        "id": imp["id"],
        "tenant": imp["tenant_id"],
        "mode": imp["mode"],
        "blank_cells": imp["blank_cells"],
        # How rows found their stored person (the key given, else the tenant's remembered one).
        "match_by": imp["match_by"],
        "state": imp["state"],
        "invites_option": imp["invites"],
        "send_at": _iso(imp["send_at"]),
        "file": imp["filename"],
        # The scheduled source that fetched the file ({"id", "name"}), or null.
        "source": {"id": imp["source_id"], "name": imp["source_name"]} if imp["source_id"] else None,
        # The admin's column choices that applied (header → field, null: ignored), remembered ones too.
        "mapping": imp["columns"].get("mapping", {}),
        "rows": {
            "total": imp["total_rows"],
            "invalid": imp["invalid_rows"],
            **dict(counts),
            # Of the updated rows, those that changed their person's address (renames).
            "email_changed": imp["email_changed"],
            "pending": valid - settled,
            "blank": imp["blank_rows"],
        },
        "deactivated": imp["deactivated"],
        "would_deactivate": imp["would_deactivate"],
        "admins_kept": imp["admins_kept"],
        "invites": dict(invites),
        # People it renamed whose invitation had gone to their old address already
        # (`invites send --resend-renamed` sends it to the new one).
        "invites_to_old_address": imp["email_changed_invited"],
        "error": imp["error"],
        "stalled_since": _iso(stalled[0]["since"]) if stalled else None,
        "idempotency_key": imp["idempotency_key"],
        "external_id": imp["external_id"],
        "created_at": _iso(imp["created_at"]),
        "started_at": _iso(imp["started_at"]),
        "finished_at": _iso(imp["finished_at"]),
        # An undo (mode "undo"): the import it undoes, its phase and counts; else null.
        "undoes": imp["undoes"],
        "undo": await undo_counts(conn, import_id) if imp["undoes"] is not None else None,
    }
