"""The template's fields: the single description of what a row may carry.

Everything that maps headers, validates cells, writes the template or exports
people reads this table, so adding a column is a change in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One column of the template."""

    name: str
    header: str
    required: bool
    max_length: int


FIELDS: tuple[Field, ...] = (
    Field("first_name", "First name", True, 100),
    Field("last_name", "Last name", True, 100),
    Field("email", "Email", True, 254),
    Field("job_title", "Job title", False, 200),
    Field("primary_team", "Primary team", False, 200),
    Field("secondary_teams", "Secondary team", False, 2000),
    Field("role", "Role", False, 20),
    Field("language", "Language", False, 50),
    Field("location", "Location", False, 200),
)

FIELDS_BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
TEMPLATE_HEADERS: tuple[str, ...] = tuple(field.header for field in FIELDS)
REQUIRED_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)

ROLES: tuple[str, ...] = ("learner", "manager", "admin")
DEFAULT_ROLE = "learner"
SECONDARY_TEAM_SEPARATOR = ";"
