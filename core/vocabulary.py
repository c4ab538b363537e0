"""The project's vocabulary: every named value and every person column, listed once.

Import modes, the blank-cells option, import states, row statuses and
outcomes, the review's actions, invite options and states, roles, webhook
events live here (the person columns of the template in ``core.columns``),
as ``StrEnum``s: a member is the ``str`` the JSON, the database and
the command line spell (``Mode.ADD_ONLY == "add-only"``), and mypy tells a
caller which values a function may take or return. The producer and the
worker derive what they need (the template's header, the header aliases,
validation, the stored columns, the CLI's choices) instead of spelling the
values again. The SQL keeps its literals where a statement must name one;
``tests/integration/test_vocabulary.py`` checks that the schema's CHECK
constraints allow exactly the values listed here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Mode(StrEnum):
    """How an import applies its file (``imports.mode``)."""

    UPSERT = "upsert"
    """Create new people, update the listed ones; nobody is deactivated."""
    SYNC = "sync"
    """Upsert, then deactivate the tenant's active people missing from the file (admins kept)."""
    ADD_ONLY = "add-only"
    """Create new people; people who exist are skipped, their teams left as they are."""
    UNDO = "undo"
    """Not a file's mode: an import of this mode undoes another (``imports.undoes``; ``core.undo``)."""


FILE_MODES: Final = (Mode.UPSERT, Mode.SYNC, Mode.ADD_ONLY)
"""The modes a file is imported in."""
DEFAULT_MODE: Final = Mode.UPSERT


class BlankCells(StrEnum):
    """What a blank cell in a column of the file means (an import option)."""

    CLEAR = "clear"
    """It clears the stored value (to the column's default)."""
    KEEP = "keep"
    """It leaves the stored value as it is (a new person gets the column's default)."""


DEFAULT_BLANK_CELLS: Final = BlankCells.CLEAR


class MatchKey(StrEnum):
    """How an import finds the stored person a row is (an import option, remembered per tenant)."""

    EMAIL = "email"
    """By e-mail: a row is the person with its address (a ``Previous email`` renames that person)."""
    EMPLOYEE_ID = "employee-id"
    """By Employee ID: a known id with another address changes that person's address."""


DEFAULT_MATCH_KEY: Final = MatchKey.EMAIL


class ImportState(StrEnum):
    """Where an import is in its life (``imports.state``)."""

    QUEUED = "queued"
    RUNNING = "running"
    FINALIZING = "finalizing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"


FINAL_STATES: Final = frozenset(
    {ImportState.DONE, ImportState.FAILED, ImportState.CANCELLED, ImportState.BLOCKED}
)
"""States an import stays in until someone acts (blocked waits for an approval)."""


class Step(StrEnum):
    """What an import's finalizing step (or the sweeper) leaves to do next."""

    SWEEP = "sweep"
    """The managers are resolved; the sweeper deactivates the missing next (sync)."""
    UNDO = "undo"
    """The import is an undo, whose batches run at this step (``core.undo``)."""
    MORE = "more"
    """The undo has more batches: this step again."""
    ROWS = "rows"
    """Rows settled at recording whose person changed since went back to pending: dispatch them."""
    DONE = "done"
    BLOCKED = "blocked"
    """The sweep would deactivate more than the allowed share: it waits for an approval."""


class UndoPhase(StrEnum):
    """An undo's progress (``undos.phase``), in order."""

    CREATED = "created"
    """First: the people the import created are deactivated, their unsent invites cancelled."""
    EMAILS = "emails"
    """Then the e-mail addresses it changed go back, all in one batch (swaps and chains included)."""
    CHANGED = "changed"
    """Then the people it updated or swept get back the values it replaced, where still its own."""
    TEAMS = "teams"
    """Then the teams' managers it changed, and the teams it created that nobody belongs to."""
    FINISHED = "finished"


UNDO_COUNTS: Final = (
    "restored",
    "emails_restored",
    "deactivated",
    "reactivated",
    "kept",
    "invites_cancelled",
    "invites_sent",
    "teams_left",
)
"""What an undo counts (the columns of ``undos``): people restored (updated by the import),
e-mail addresses given back,
deactivated (created by it), reactivated (swept by it); values kept because changed since;
unsent invites cancelled; invites already sent; teams it created that nobody belongs to."""


class RowStatus(StrEnum):
    """An import row's status (``import_rows.status``): invalid, pending, or what applying it did."""

    INVALID = "invalid"
    PENDING = "pending"
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


OUTCOMES: Final = (
    RowStatus.CREATED,
    RowStatus.UPDATED,
    RowStatus.UNCHANGED,
    RowStatus.SKIPPED,
    RowStatus.FAILED,
)
"""What applying a valid row did; also the columns of ``import_counters``, in order."""
APPLIED_OUTCOMES: Final = (RowStatus.CREATED, RowStatus.UPDATED, RowStatus.UNCHANGED)
"""Rows whose person now holds the row's values (managers are taken from these)."""


class Action(StrEnum):
    """What the review predicts for a row, under its own (imperative) name."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    SKIP = "skip"


OUTCOME_OF_ACTION: Final = {
    Action.CREATE: RowStatus.CREATED,
    Action.UPDATE: RowStatus.UPDATED,
    Action.UNCHANGED: RowStatus.UNCHANGED,
    Action.SKIP: RowStatus.SKIPPED,
}


class Role(StrEnum):
    """A person's role on the platform."""

    LEARNER = "learner"
    MANAGER = "manager"
    ADMIN = "admin"


DEFAULT_ROLE: Final = Role.LEARNER


class PersonStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class InviteOption(StrEnum):
    """When an import invites the people it created (an import option)."""

    NONE = "none"
    NOW = "now"
    AT = "at"
    """At the import's ``send_at``."""


class InviteState(StrEnum):
    """One invitation's state (``invites.status``)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class BatchState(StrEnum):
    """An invite batch's state (``invite_batches.state``)."""

    SCHEDULED = "scheduled"
    RELEASED = "released"
    CANCELLED = "cancelled"


class InviteOutcome(StrEnum):
    """What one attempt to send an invite did (``core.invites.deliver_invite``)."""

    NOT_NEEDED = "not_needed"
    """Sent, cancelled or claimed already: nothing to do."""
    LATER = "later"
    """Over the shared rate: sent again a moment later, no retry used up."""
    FAILED = "failed"
    """Refused for good by the mail server (or out of retries): the invite is failed."""
    SENT = "sent"


class EventType(StrEnum):
    """The webhook events (``webhook_events.type``)."""

    IMPORT_COMPLETED = "import.completed"
    """The import is done (its people applied, the sweep run)."""
    IMPORT_FAILED = "import.failed"
    IMPORT_CANCELLED = "import.cancelled"
    IMPORT_BLOCKED = "import.blocked"
    """The sweep guard waits for an approval (the count and share it would deactivate)."""
    INVITES_COMPLETED = "invites.completed"
    """Every invite of an import was sent or failed (cancelled ones aside)."""


EVENT_OF_STATE: Final = {
    ImportState.DONE: EventType.IMPORT_COMPLETED,
    ImportState.FAILED: EventType.IMPORT_FAILED,
    ImportState.CANCELLED: EventType.IMPORT_CANCELLED,
    ImportState.BLOCKED: EventType.IMPORT_BLOCKED,
}
"""The event each state an import ends (or waits) in records."""


class DeliveryState(StrEnum):
    """A webhook delivery's state (``webhook_deliveries.state``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Its retries ran out (or its endpoint answered 410 Gone): redeliver it by hand."""


class ColumnKind(StrEnum):
    """How a person column's cell is validated and stored (``Column.kind``)."""

    EMAIL = "email"
    """An address (the person's, or their previous one): valid, lower-cased; not a stored value column."""
    ID = "id"
    """An identifier (the Employee ID): trimmed text kept exactly as written; a blank cell never
    clears a stored one, and a stored one never changes (it is a key, like the e-mail)."""
    TEXT = "text"
    """Trimmed text on one line, stored as is."""
    TEAM = "team"
    """A team name (runs of spaces collapsed), stored as the team's id."""
    TEAMS = "teams"
    """Team names separated by ``SECONDARY_TEAM_SEPARATOR``, stored as the teams' ids."""
    ROLE = "role"
    """One of ``Role``, any case; blank means ``DEFAULT_ROLE``."""
    LANGUAGE = "language"
    """An ISO 639-1 code, or a language's English name; stored as the code."""


class ImportOrigin(StrEnum):
    """Where an import came from (``imports.origin``)."""

    FILE = "file"
    """A file: the command line, the HTTP API, the admins' pages, a scheduled source."""
    SCIM = "scim"
    """An identity provider's SCIM request (``/scim/v2``): one import per write, a row per operation."""


class SourceKind(StrEnum):
    """Where a scheduled source fetches its file from (``sources.kind``)."""

    SFTP = "sftp"
    """An SFTP server: the newest file matching a path or glob, the server's host key pinned."""
    HTTPS = "https"
    """An HTTPS URL, with an optional header (``Authorization``, say)."""


class RunState(StrEnum):
    """A source run's state (``source_runs.state``)."""

    PENDING = "pending"
    """To be attempted (again, at ``next_attempt_at``: a fetch that failed is retried)."""
    DONE = "done"
    """It has its outcome."""


class RunOutcome(StrEnum):
    """What a source's run did (``source_runs.outcome``)."""

    IMPORTED = "imported"
    """The file was reviewed and its import recorded (``import_id``)."""
    UNCHANGED = "unchanged"
    """The file is the one the source last imported (same SHA-256): skipped."""
    BLOCKED = "blocked"
    """The review found it not importable, or its sync would trip the sweep guard: nothing imported."""
    FAILED = "failed"
    """The file could not be fetched (after the retries), or is over the size limit."""
