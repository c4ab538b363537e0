"""The project's vocabulary: every named value and every person column, listed once.

Import modes, the blank-cells option, import states, row statuses and outcomes, invite options and
states, roles, and the person columns of the template all live here; the
producer and the worker derive what they need (the template's header, the
header aliases, validation, the stored columns, the CLI's choices) instead of
spelling the values again. The SQL keeps its literals where a statement must
name one; ``tests/integration/test_vocabulary.py`` checks that the schema's
CHECK constraints allow exactly the values listed here.

Lives in ``worker`` because both sides use it and the worker imports nothing
from the producer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# --- import modes ------------------------------------------------------------------------
UPSERT: Final = "upsert"
"""Create new people, update the listed ones; nobody is deactivated."""
SYNC: Final = "sync"
"""Upsert, then deactivate the tenant's active people missing from the file (admins kept)."""
ADD_ONLY: Final = "add-only"
"""Create new people; people who exist are skipped, their teams left as they are."""
MODES: Final = (UPSERT, SYNC, ADD_ONLY)
"""The modes a file is imported in."""
DEFAULT_MODE: Final = UPSERT
UNDO: Final = "undo"
"""Not a file's mode: an import of this mode undoes another (``imports.undoes``; ``worker.undo``)."""
IMPORT_MODES: Final = (*MODES, UNDO)
"""Every mode an import may have (``imports.mode``)."""

# --- undo (worker.undo) --------------------------------------------------------------------
UNDO_CREATED: Final = "created"
"""First phase: the people the import created are deactivated, their unsent invites cancelled."""
UNDO_CHANGED: Final = "changed"
"""Then the people it updated or swept get back the values it replaced, where still its own."""
UNDO_TEAMS: Final = "teams"
"""Then the teams' managers it changed, and the teams it created that nobody belongs to."""
UNDO_FINISHED: Final = "finished"
UNDO_PHASES: Final = (UNDO_CREATED, UNDO_CHANGED, UNDO_TEAMS, UNDO_FINISHED)
UNDO_COUNTS: Final = (
    "restored",
    "deactivated",
    "reactivated",
    "kept",
    "invites_cancelled",
    "invites_sent",
    "teams_left",
)
"""What an undo counts (the columns of ``undos``): people restored (updated by the import),
deactivated (created by it), reactivated (swept by it); values kept because changed since;
unsent invites cancelled; invites already sent; teams it created that nobody belongs to."""

# --- blank cells (an import option) -------------------------------------------------------
CLEAR: Final = "clear"
"""A blank cell in a column of the file clears the stored value (to the column's default)."""
KEEP: Final = "keep"
"""A blank cell leaves the stored value as it is (a new person gets the column's default)."""
BLANK_CELLS: Final = (CLEAR, KEEP)
DEFAULT_BLANK_CELLS: Final = CLEAR

# --- import states -----------------------------------------------------------------------
QUEUED: Final = "queued"
RUNNING: Final = "running"
FINALIZING: Final = "finalizing"
DONE: Final = "done"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
BLOCKED: Final = "blocked"
IMPORT_STATES: Final = (QUEUED, RUNNING, FINALIZING, DONE, FAILED, CANCELLED, BLOCKED)
FINAL_STATES: Final = frozenset({DONE, FAILED, CANCELLED, BLOCKED})
"""States an import stays in until someone acts (blocked waits for an approval)."""

# --- import rows -------------------------------------------------------------------------
CREATED: Final = "created"
UPDATED: Final = "updated"
UNCHANGED: Final = "unchanged"
SKIPPED: Final = "skipped"
OUTCOMES: Final = (CREATED, UPDATED, UNCHANGED, SKIPPED, FAILED)
"""What applying a valid row did; also the columns of ``import_counters``, in order."""
INVALID: Final = "invalid"
PENDING: Final = "pending"
ROW_STATUSES: Final = (INVALID, PENDING, *OUTCOMES)
APPLIED_OUTCOMES: Final = (CREATED, UPDATED, UNCHANGED)
"""Rows whose person now holds the row's values (managers are taken from these)."""

# The review predicts each row's outcome under its own (imperative) name.
CREATE: Final = "create"
UPDATE: Final = "update"
SKIP: Final = "skip"
ACTIONS: Final = (CREATE, UPDATE, UNCHANGED, SKIP)
OUTCOME_OF_ACTION: Final = {CREATE: CREATED, UPDATE: UPDATED, UNCHANGED: UNCHANGED, SKIP: SKIPPED}

# --- people ------------------------------------------------------------------------------
LEARNER: Final = "learner"
MANAGER: Final = "manager"
ADMIN: Final = "admin"
ROLES: Final = (LEARNER, MANAGER, ADMIN)
DEFAULT_ROLE: Final = LEARNER
ACTIVE: Final = "active"
DEACTIVATED: Final = "deactivated"
PERSON_STATUSES: Final = (ACTIVE, DEACTIVATED)

# --- invites -----------------------------------------------------------------------------
INVITE_NONE: Final = "none"
INVITE_NOW: Final = "now"
INVITE_AT: Final = "at"
INVITE_OPTIONS: Final = (INVITE_NONE, INVITE_NOW, INVITE_AT)
SCHEDULED: Final = "scheduled"
SENDING: Final = "sending"
SENT: Final = "sent"
INVITE_STATES: Final = (PENDING, SCHEDULED, SENDING, SENT, FAILED, CANCELLED)
RELEASED: Final = "released"
BATCH_STATES: Final = (SCHEDULED, RELEASED, CANCELLED)

# --- webhooks ----------------------------------------------------------------------------
IMPORT_COMPLETED: Final = "import.completed"
"""The import is done (its people applied, the sweep run)."""
IMPORT_FAILED: Final = "import.failed"
IMPORT_CANCELLED: Final = "import.cancelled"
IMPORT_BLOCKED: Final = "import.blocked"
"""The sweep guard waits for an approval (the count and share it would deactivate)."""
INVITES_COMPLETED: Final = "invites.completed"
"""Every invite of an import was sent or failed (cancelled ones aside)."""
EVENT_TYPES: Final = (IMPORT_COMPLETED, IMPORT_FAILED, IMPORT_CANCELLED, IMPORT_BLOCKED, INVITES_COMPLETED)
EVENT_OF_STATE: Final = {
    DONE: IMPORT_COMPLETED,
    FAILED: IMPORT_FAILED,
    CANCELLED: IMPORT_CANCELLED,
    BLOCKED: IMPORT_BLOCKED,
}
"""The event each state an import ends (or waits) in records."""
DELIVERED: Final = "delivered"
DEAD: Final = "dead"
"""A delivery whose retries ran out (or whose endpoint answered 410 Gone): redeliver it by hand."""
DELIVERY_STATES: Final = (PENDING, DELIVERED, DEAD)

# --- person columns ----------------------------------------------------------------------
# How a cell is validated and stored (``Column.kind``).
EMAIL: Final = "email"
"""The person's key: a valid address, lower-cased; not a stored value column."""
TEXT: Final = "text"
"""Trimmed text on one line, stored as is."""
TEAM: Final = "team"
"""A team name (runs of spaces collapsed), stored as the team's id."""
TEAMS: Final = "teams"
"""Team names separated by ``SECONDARY_TEAM_SEPARATOR``, stored as the teams' ids."""
ROLE: Final = "role"
"""One of ``ROLES``, any case; blank means ``DEFAULT_ROLE``."""
LANGUAGE: Final = "language"
"""An ISO 639-1 code, or a language's English name; stored as the code."""
SECONDARY_TEAM_SEPARATOR: Final = ";"
PRIMARY_TEAM_ID: Final = "primary_team_id"
SECONDARY_TEAM_IDS: Final = "secondary_team_ids"


@dataclass(frozen=True)
class Column:
    """One column of the template, and of the people it describes.

    ``aliases`` are headers other systems write for it, as people type them
    (compared after :func:`producer.mapping.normalise`); the name and header
    match too. ``stored_as`` is the ``people`` column holding its value;
    ``default`` is stored for a blank cell and for a new person without the
    column (``people``'s DEFAULT says the same).
    """

    name: str
    header: str
    required: bool
    max_length: int
    kind: str = TEXT
    aliases: tuple[str, ...] = ()
    stored_as: str | None = ""
    default: str | None = None

    def __post_init__(self) -> None:
        # Most columns are stored under their own name; saying so for each would be noise.
        if self.stored_as == "":
            object.__setattr__(self, "stored_as", self.name)


# Template order: the template's header, the export and the tests' rows follow it.
COLUMNS: Final[tuple[Column, ...]] = (
    Column(
        "first_name",
        "First name",
        True,
        100,
        aliases=(
            "first name",
            "given name",
            "givenName",
            "forename",
            "first",
            "fname",
            "legal first name",
            "prénom",
            "vorname",
        ),
    ),
    Column(
        "last_name",
        "Last name",
        True,
        100,
        aliases=(
            "last name",
            "surname",
            "family name",
            "sn",
            "last",
            "lname",
            "legal last name",
            "nom",
            "nom de famille",
            "nachname",
        ),
    ),
    Column(
        "email",
        "Email",
        True,
        254,
        EMAIL,
        stored_as=None,
        aliases=(
            "e-mail",
            "email address",
            "e-mail address",
            "work email",
            "work e-mail",
            "mail",
            "user principal name",
            "userPrincipalName",
            "upn",
            "primary email",
            "business email",
            "email - work",
            "courriel",
            "adresse e-mail",
            "e-mail-adresse",
        ),
    ),
    Column(
        "job_title",
        "Job title",
        False,
        200,
        aliases=(
            "title",
            "position",
            "job title",
            "jobTitle",
            "designation",
            "role title",
            "employee title",
            "business title",
            "position title",
            "poste",
            "intitulé du poste",
            "fonction",
            "berufsbezeichnung",
        ),
    ),
    Column(
        "primary_team",
        "Primary team",
        False,
        200,
        TEAM,
        stored_as=PRIMARY_TEAM_ID,
        aliases=(
            "primary team",
            "team",
            "department",
            "dept",
            "group",
            "primary department",
            "org unit",
            "organizational unit",
            "organisational unit",
            "team name",
            "department name",
            "supervisory organization",
            "équipe",
            "département",
            "abteilung",
        ),
    ),
    Column(
        "secondary_teams",
        "Secondary team",
        False,
        2000,
        TEAMS,
        stored_as=SECONDARY_TEAM_IDS,
        aliases=(
            "secondary team",
            "secondary teams",
            "additional team",
            "additional teams",
            "other team",
            "other teams",
            "teams",
            "équipes secondaires",
        ),
    ),
    Column(
        "role",
        "Role",
        False,
        20,
        ROLE,
        default=DEFAULT_ROLE,
        aliases=(
            "role",
            "user role",
            "access level",
            "permission",
            "permissions",
            "platform role",
            "rôle",
            "rolle",
        ),
    ),
    Column(
        "language",
        "Language",
        False,
        50,
        LANGUAGE,
        aliases=(
            "language",
            "locale",
            "preferred language",
            "preferredLanguage",
            "lang",
            "language code",
            "langue",
            "sprache",
        ),
    ),
    Column(
        "location",
        "Location",
        False,
        200,
        aliases=(
            "location",
            "office",
            "city",
            "site",
            "office location",
            "work location",
            "officeLocation",
            "physicalDeliveryOfficeName",
            "lieu",
            "standort",
        ),
    ),
)

COLUMNS_BY_NAME: Final = {column.name: column for column in COLUMNS}
TEMPLATE_HEADERS: Final = tuple(column.header for column in COLUMNS)
REQUIRED_COLUMNS: Final = tuple(column.name for column in COLUMNS if column.required)
VALUE_COLUMNS: Final = tuple(column for column in COLUMNS if column.stored_as is not None)
"""The columns a person stores a value of: all but the e-mail."""
PLAIN_COLUMNS: Final = tuple(column.name for column in VALUE_COLUMNS if column.kind not in (TEAM, TEAMS))
"""Columns stored as the row's value itself (teams are stored as ids)."""
PERSON_COLUMNS: Final = tuple(column.stored_as for column in VALUE_COLUMNS if column.stored_as is not None)
"""The ``people`` columns an import writes, in ``COLUMNS`` order."""
PRIMARY_TEAM: Final = next(column.name for column in COLUMNS if column.kind == TEAM)
SECONDARY_TEAMS: Final = next(column.name for column in COLUMNS if column.kind == TEAMS)
