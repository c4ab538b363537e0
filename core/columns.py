"""The person columns of the template, listed once: what a file may say about a person.

Each :class:`Column` names its header, its aliases (the headers other systems
write for it), whether it is required, how its cell is validated and stored
(``ColumnKind``) and the ``people`` column holding its value. The template's
header, the header aliases, validation, the stored columns and the export
are derived from ``COLUMNS``; adding a column is one ``Column`` here, a
migration, and the SQL that stores and reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.vocabulary import DEFAULT_ROLE, ColumnKind

SECONDARY_TEAM_SEPARATOR: Final = ";"
PRIMARY_TEAM_ID: Final = "primary_team_id"
SECONDARY_TEAM_IDS: Final = "secondary_team_ids"


@dataclass(frozen=True)
class Column:
    """One column of the template, and of the people it describes.

    ``aliases`` are headers other systems write for it, as people type them
    (compared after :func:`core.intake.mapping.normalise`); the name and header
    match too. ``stored_as`` is the ``people`` column holding its value;
    ``default`` is stored for a blank cell and for a new person without the
    column (``people``'s DEFAULT says the same). ``template``: the column is in
    the template and the export (``Previous email`` is read, never stored).
    """

    name: str
    header: str
    required: bool
    max_length: int
    kind: ColumnKind = ColumnKind.TEXT
    aliases: tuple[str, ...] = ()
    stored_as: str | None = ""
    default: str | None = None
    template: bool = True

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
        ColumnKind.EMAIL,
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
        ColumnKind.TEAM,
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
        ColumnKind.TEAMS,
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
        ColumnKind.ROLE,
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
        ColumnKind.LANGUAGE,
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
    # Last, so that files written for the template before it existed keep their columns' meaning.
    Column(
        "employee_id",
        "Employee ID",
        False,
        64,
        ColumnKind.ID,
        aliases=(
            "employee id",
            "employeeId",
            "employee number",
            "employeeNumber",
            "employee no",
            "emp id",
            "staff id",
            "staff number",
            "person id",
            "personnel number",
            "worker id",
            "payroll id",
            "payroll number",
            "external id",
            "externalId",
            "matricule",
            "numéro d'employé",
            "personalnummer",
            "mitarbeiternummer",
        ),
    ),
    # Read to rename the person at that address; never stored, so not in the template or the export.
    Column(
        "previous_email",
        "Previous email",
        False,
        254,
        ColumnKind.EMAIL,
        stored_as=None,
        template=False,
        aliases=(
            "previous e-mail",
            "previous email address",
            "previous e-mail address",
            "old email",
            "old e-mail",
            "old email address",
            "former email",
            "former e-mail",
            "email before",
            "ancienne adresse e-mail",
            "alte e-mail-adresse",
        ),
    ),
)

COLUMNS_BY_NAME: Final = {column.name: column for column in COLUMNS}
TEMPLATE_COLUMNS: Final = tuple(column for column in COLUMNS if column.template)
"""The columns of the template and the export, in order."""
TEMPLATE_HEADERS: Final = tuple(column.header for column in TEMPLATE_COLUMNS)
REQUIRED_COLUMNS: Final = tuple(column.name for column in COLUMNS if column.required)
VALUE_COLUMNS: Final = tuple(column for column in COLUMNS if column.stored_as is not None)
"""The columns a person stores a value of: all but the e-mail and the previous one."""
PLAIN_COLUMNS: Final = tuple(
    column.name for column in VALUE_COLUMNS if column.kind not in (ColumnKind.TEAM, ColumnKind.TEAMS)
)
"""Columns stored as the row's value itself (teams are stored as ids)."""
PERSON_COLUMNS: Final = tuple(column.stored_as for column in VALUE_COLUMNS if column.stored_as is not None)
"""The ``people`` columns an import writes, in ``COLUMNS`` order."""
PRIMARY_TEAM: Final = next(column.name for column in COLUMNS if column.kind == ColumnKind.TEAM)
SECONDARY_TEAMS: Final = next(column.name for column in COLUMNS if column.kind == ColumnKind.TEAMS)
EMPLOYEE_ID: Final = next(column.name for column in COLUMNS if column.kind == ColumnKind.ID)
PREVIOUS_EMAIL: Final = "previous_email"
"""The column a row names the address its person had with (a rename), read and never stored."""
DEACTIVATE_FLAG: Final = "active"
"""The key of a row's data that deactivates its person when False: SCIM's ``active`` (no file says it)."""
