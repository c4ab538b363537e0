"""The template's fields, as the producer names them: a view of :mod:`core.columns`.

The columns themselves (header, required, length, kind, aliases) are listed in
``core.columns.COLUMNS``; this module keeps the names the producer's
modules and the tests import.
"""

from __future__ import annotations

from core.columns import (
    COLUMNS,
    COLUMNS_BY_NAME,
    REQUIRED_COLUMNS,
    SECONDARY_TEAM_SEPARATOR,
    TEMPLATE_HEADERS,
    Column,
)
from core.vocabulary import DEFAULT_ROLE

__all__ = [
    "DEFAULT_ROLE",
    "FIELDS",
    "FIELDS_BY_NAME",
    "REQUIRED_FIELDS",
    "SECONDARY_TEAM_SEPARATOR",
    "TEMPLATE_HEADERS",
    "Field",
]

Field = Column
FIELDS: tuple[Field, ...] = COLUMNS
FIELDS_BY_NAME: dict[str, Field] = COLUMNS_BY_NAME
REQUIRED_FIELDS: tuple[str, ...] = REQUIRED_COLUMNS
