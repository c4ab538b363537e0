"""The template's fields, as the producer names them: a view of :mod:`worker.vocabulary`.

The columns themselves (header, required, length, kind, aliases) are listed in
``worker.vocabulary.COLUMNS``; this module keeps the names the producer's
modules and the tests import.
"""

from __future__ import annotations

from worker.vocabulary import (
    COLUMNS,
    COLUMNS_BY_NAME,
    DEFAULT_ROLE,
    REQUIRED_COLUMNS,
    ROLES,
    SECONDARY_TEAM_SEPARATOR,
    TEMPLATE_HEADERS,
    Column,
)

__all__ = [
    "DEFAULT_ROLE",
    "FIELDS",
    "FIELDS_BY_NAME",
    "REQUIRED_FIELDS",
    "ROLES",
    "SECONDARY_TEAM_SEPARATOR",
    "TEMPLATE_HEADERS",
    "Field",
]

Field = Column
FIELDS: tuple[Field, ...] = COLUMNS
FIELDS_BY_NAME: dict[str, Field] = COLUMNS_BY_NAME
REQUIRED_FIELDS: tuple[str, ...] = REQUIRED_COLUMNS
