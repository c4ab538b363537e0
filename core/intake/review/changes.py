"""What the import would change for each person it updates, field by field, and their manager.

One named statement (``review_row_changes``) reads the review's scratch table
against the tenant's people and teams set-based and answers, per row, what
the person holds now and after the import, by the classification's own rule
(``review_classify_rows``) and the worker's manager rule (``finalize_import``).
This module turns each answer into the list of changes and pages through
them; rows stream through a cursor, so memory stays flat for any file size.

A change is ``{"field", "header", "old", "new"}``, in the template's column
order (``email`` for a rename: their address now, then after the import),
then ``status`` (a deactivated person is reactivated), then ``manager`` (the
e-mail of the person's manager, or None; listed only when another person
manages them: a renamed manager is the same manager). Values are what an
admin reads: teams by name (secondary teams joined with "; ", sorted by team
key), the role's word, the language's code; None for no value.

What it leaves out, on purpose: a person whose row changes nothing of their
own is ``unchanged`` (as the worker counts them) and not listed, even when
another row gives their team a new manager; so is everyone not in the file.
It predicts against the people as they are now: a row the database refuses
when the import runs, or a change made between the review and the import,
is not foreseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from core.columns import COLUMNS, COLUMNS_BY_NAME, SECONDARY_TEAMS
from core.intake.queries import QUERIES
from core.intake.validation import team_key
from core.vocabulary import Action, PersonStatus

REVIEW_ROW_CHANGES = QUERIES["review_row_changes"]

__all__ = ["CHANGES_PAGE", "ChangeRule", "changed_rows", "person_changes", "row_actions"]

CHANGES_PAGE = 50
"""Updated rows the review JSON carries with their changes unless asked for another page."""
STATUS, MANAGER = "status", "manager"
_HEADERS = {STATUS: "Status", MANAGER: "Manager"}
# The fields a person holds, in template order: the stored ones and their address.
_FIELDS = tuple(f.name for f in COLUMNS if f.stored_as is not None or f.name == "email")
_PREFETCH = 1_000


def _shown(field: str, value: Any) -> Any:
    if field == SECONDARY_TEAMS:
        return "; ".join(value) if value else None
    return value


def _change(field: str, old: Any, new: Any) -> dict[str, Any]:
    header = _HEADERS.get(field) or COLUMNS_BY_NAME[field].header
    return {"field": field, "header": header, "old": _shown(field, old), "new": _shown(field, new)}


def person_changes(record: asyncpg.Record) -> list[dict[str, Any]]:
    """The changes one row of ``review_row_changes`` makes to its stored person, in order."""
    changes = [
        _change(field, record[f"old_{field}"], record[f"new_{field}"])
        for field in _FIELDS
        if _differs(field, record[f"old_{field}"], record[f"new_{field}"])
    ]
    if record["old_status"] != PersonStatus.ACTIVE:
        changes.append(_change(STATUS, record["old_status"], PersonStatus.ACTIVE))
    # Addresses after the import on both sides: a manager who is renamed is not a new manager.
    if record["old_manager_after"] != record["new_manager"]:
        changes.append(_change(MANAGER, record["old_manager"], record["new_manager"]))
    return changes


def _differs(field: str, old: Any, new: Any) -> bool:
    if field == SECONDARY_TEAMS:
        # The same teams, whatever their order (is_unchanged compares sorted ids).
        return sorted(map(team_key, old or [])) != sorted(map(team_key, new or []))
    return bool(old != new)


@dataclass(frozen=True)
class ChangeRule:
    """What the changes depend on: the tenant, the file's fields and the import's options."""

    tenant: str
    fields: tuple[str, ...]
    add_only: bool
    keep_blank: bool

    def query(self) -> tuple[Any, ...]:
        """``review_row_changes`` and its first four arguments."""
        return (REVIEW_ROW_CHANGES, self.tenant, list(self.fields), self.add_only, self.keep_blank)


async def changed_rows(
    conn: asyncpg.Connection,
    rule: ChangeRule,
    total: int,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """One page of the updated rows with their changes: ``{"total", "offset", "limit", "rows"}``.

    ``total`` is the number of rows to update (the preview's count): the
    statement is skipped when the page holds none of them.
    """
    rows: list[dict[str, Any]] = []
    if offset < total and limit > 0:
        async for r in conn.cursor(*rule.query(), True, offset, limit, prefetch=min(limit, _PREFETCH)):
            rows.append(
                {"row": r["row_number"], "email": r["email"], "name": r["name"], "changes": person_changes(r)}
            )
    return {"total": total, "offset": offset, "limit": limit, "rows": rows}


async def row_actions(conn: asyncpg.Connection, rule: ChangeRule, cap: int) -> list[dict[str, Any]]:
    """Each row's e-mail and action in file order, at most ``cap``; an update carries its changes."""
    previews = []
    async for r in conn.cursor(*rule.query(), False, 0, cap, prefetch=_PREFETCH):
        preview: dict[str, Any] = {"row": r["row_number"], "email": r["email"], "action": r["action"]}
        if r["action"] == Action.UPDATE:
            preview["changes"] = person_changes(r)
        previews.append(preview)
    return previews
