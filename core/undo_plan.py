"""What undoing an import does to one page of its people, decided from the page statements.

Pure functions over the rows of ``core/sql/undo.sql``'s page statements,
shared by the undo's batches (``core.undo``) and its preview, so the two
cannot disagree. A :class:`Plan` holds what to write (people to deactivate,
invites to cancel, values to restore) and a :class:`Tally`: the counts of
``core.vocabulary.UNDO_COUNTS`` and the lines of the report, one for each
thing that could not be restored and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.columns import COLUMNS, PRIMARY_TEAM_ID, SECONDARY_TEAM_IDS
from core.vocabulary import UNDO_COUNTS, InviteState, PersonStatus

REPORT_HEADER = ("Email", "Row in the import", "Field", "Before the import", "Written by the import", "Now")
"""The undo's errors file: ``Row`` (the line), these columns, then ``Reason``."""

CHANGED_SINCE = "changed since; kept"
# The columns an undo reports by name; the others it restores travel with them
# (deactivated_at and deactivated_by_import with status; last_import_id).
FIELD_NAMES: Mapping[str, str] = {
    **{c.stored_as: c.header for c in COLUMNS if c.stored_as is not None},
    "status": "Status",
}
EMAIL_FIELD = "Email"
_STATUS_GROUP = ("status", "deactivated_at", "deactivated_by_import")
_CANCELLABLE = (InviteState.PENDING, InviteState.SCHEDULED, InviteState.FAILED)
_TEAM_KEYS = (PRIMARY_TEAM_ID, SECONDARY_TEAM_IDS)


@dataclass(frozen=True)
class Line:
    """One thing an undo could not restore (or undo), and why."""

    email: str
    row: int | None
    field: str
    before: str
    written: str
    now: str
    reason: str

    def raw(self) -> list[str]:
        """The cells under ``REPORT_HEADER``."""
        row = "" if self.row is None else str(self.row)
        return [self.email, row, self.field, self.before, self.written, self.now]

    def as_dict(self) -> dict[str, Any]:
        """The preview's JSON of this line."""
        return {
            "email": self.email,
            "row": self.row,
            "field": self.field,
            "before": self.before,
            "written": self.written,
            "now": self.now,
            "reason": self.reason,
        }


@dataclass
class Tally:
    """Counts (``UNDO_COUNTS``) and report lines."""

    counts: Counter[str] = field(default_factory=Counter)
    lines: list[Line] = field(default_factory=list)

    def ordered(self) -> list[int]:
        """The counts in ``UNDO_COUNTS`` order (``advance_undo``'s parameters)."""
        return [self.counts[name] for name in UNDO_COUNTS]


@dataclass
class Plan:
    """What to write for one page, and what it counts and reports."""

    deactivate: list[int] = field(default_factory=list)
    cancel_invites: list[int] = field(default_factory=list)
    restore_ids: list[int] = field(default_factory=list)
    restore_values: list[dict[str, Any]] = field(default_factory=list)
    email_ids: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def plan_created(rows: Iterable[Mapping[str, Any]], import_id: int) -> Plan:
    """People the import created: deactivate them and cancel their unsent invite.

    Not those another import has written since (kept active, reported), nor
    those already deactivated. An invite already sent is reported: an e-mail
    cannot be unsent.
    """
    plan = Plan()
    for r in rows:
        if r["action"] == "changed_since":
            plan.tally.counts["kept"] += 1
            reason = (
                f"created by import {import_id}, then written by import {r['last_import_id']}: kept active"
            )
            plan.tally.lines.append(
                Line(r["email"], r["row_number"], "Status", "", "active", "active", reason)
            )
            continue
        if r["action"] != "deactivate":
            continue
        plan.deactivate.append(r["person_id"])
        plan.tally.counts["deactivated"] += 1
        status = r["invite_status"]
        if status in _CANCELLABLE:
            plan.cancel_invites.append(r["invite_id"])
            plan.tally.counts["invites_cancelled"] += 1
        elif status is not None:
            plan.tally.counts["invites_sent"] += 1
            sent = f"{status} {_when(r['invite_sent_at'])}".strip()
            reason = "the invitation was already sent: an e-mail cannot be unsent"
            plan.tally.lines.append(Line(r["email"], r["row_number"], "Invitation", "", "", sent, reason))
    return plan


def team_ids_to_name(rows: Iterable[Mapping[str, Any]]) -> set[int]:
    """The team ids a page's kept values mention (their names make the report readable)."""
    ids: set[int] = set()
    for r in rows:
        for key in _TEAM_KEYS:
            for value in r["kept"].get(key, ()):
                if isinstance(value, list):
                    ids.update(value)
                elif value is not None:
                    ids.add(value)
    return ids


def _shown(value: Any, teams: Mapping[int, str]) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_shown(v, teams) for v in value)
    if isinstance(value, int):
        return teams.get(value, str(value))
    return str(value)


def plan_changed(rows: Iterable[Mapping[str, Any]], teams: Mapping[int, str]) -> Plan:
    """People the import updated or swept: put back each value that is still its own.

    A value changed since (by a later import, another admin) is kept and
    reported. A person's status moves with its deactivation time and origin,
    or not at all.
    """
    plan = Plan()
    for r in rows:
        restore, kept = dict(r["restore"]), dict(r["kept"])
        if any(k in kept for k in _STATUS_GROUP):
            for key in _STATUS_GROUP:
                restore.pop(key, None)
        if restore:
            plan.restore_ids.append(r["person_id"])
            plan.restore_values.append(restore)
        if any(k in FIELD_NAMES for k in restore):
            swept = r["status_written"] == PersonStatus.DEACTIVATED
            plan.tally.counts["reactivated" if swept else "restored"] += 1
        for key, (before, written, now) in sorted(kept.items()):
            if key not in FIELD_NAMES:
                continue
            plan.tally.counts["kept"] += 1
            names = teams if key in _TEAM_KEYS else {}
            before, written, now = (_shown(v, names) for v in (before, written, now))
            line = Line(r["email"], r["row_number"], FIELD_NAMES[key], before, written, now, CHANGED_SINCE)
            plan.tally.lines.append(line)
    return plan


def plan_purged(rows: Sequence[Mapping[str, Any]], retention_days: int) -> Plan:
    """People the import updated, past the retention window: reported, kept as they are."""
    plan = Plan()
    reason = (
        f"the values the import replaced are kept {retention_days} days (UNDO_RETENTION_DAYS)"
        " and the import ended before that: kept as they are"
    )
    for r in rows:
        plan.tally.counts["kept"] += 1
        plan.tally.lines.append(Line(r["email"], r["row_number"], "", "", "", "", reason))
    return plan


def plan_emails(rows: Iterable[Mapping[str, Any]]) -> Plan:
    """The addresses the import changed (``undo_email_moves``): give back each that can be, as one set.

    A person who no longer holds the address the import gave them is kept
    (changed since); so is one whose old address someone who keeps it holds
    now (or whose own address could not be given back first), reported with
    who holds it.
    """
    plan = Plan()
    for r in rows:
        action = r["action"]
        if action == "restore":
            plan.email_ids.append(r["person_id"])
            plan.emails.append(r["before"])
            plan.tally.counts["emails_restored"] += 1
            continue
        if action == "already":
            continue
        plan.tally.counts["kept"] += 1
        if action == "taken":
            name = " ".join(part for part in (r["holder_first_name"], r["holder_last_name"]) if part)
            holder = f"{name} ({r['holder_email']})" if name else r["holder_email"]
            reason = f"{r['before']} is the address of {holder} now, who keeps it: kept"
        else:
            reason = CHANGED_SINCE
        plan.tally.lines.append(
            Line(r["now"], r["row_number"], EMAIL_FIELD, r["before"], r["written"], r["now"], reason)
        )
    return plan
