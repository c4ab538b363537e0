"""The CSV template admins fill in, optionally with a few example rows."""

from __future__ import annotations

import csv
from typing import TextIO

from core.columns import TEMPLATE_COLUMNS, TEMPLATE_HEADERS

# By column name, so the examples follow the vocabulary's column order and a
# new column needs no change here (its cells are left blank).
EXAMPLE_ROWS: tuple[dict[str, str], ...] = (
    {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada.lovelace@example.com",
        "employee_id": "E1001",
        "job_title": "Head of Engineering",
        "primary_team": "Engineering",
        "role": "Manager",
        "language": "English",
        "location": "London",
    },
    {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace.hopper@example.com",
        "employee_id": "E1002",
        "job_title": "Staff Engineer",
        "primary_team": "Engineering",
        "secondary_teams": "Architecture; Security",
        "role": "Learner",
        "language": "en",
        "location": "New York",
    },
    {
        "first_name": "Marie",
        "last_name": "Curie",
        "email": "marie.curie@example.com",
        "employee_id": "E1003",
        "job_title": "Research Lead",
        "primary_team": "Research",
        "secondary_teams": "Engineering",
        "role": "Manager",
        "language": "fr",
        "location": "Paris",
    },
    {
        "first_name": "Émile",
        "last_name": "Durand",
        "email": "emile.durand@example.com",
        "employee_id": "E1004",
        "job_title": "Research Assistant",
        "primary_team": "Research",
        "language": "French",
        "location": "Lyon",
    },
    {
        "first_name": "Lena",
        "last_name": "Schmidt",
        "email": "lena.schmidt@example.com",
        "employee_id": "E1005",
        "job_title": "People Partner",
        "primary_team": "People",
        "role": "Admin",
        "language": "de",
        "location": "Berlin",
    },
)


def write_template(out: TextIO, *, example: bool = False) -> None:
    """Write the template's header row, and with ``example`` a few filled-in rows."""
    writer = csv.writer(out)
    writer.writerow(TEMPLATE_HEADERS)
    if example:
        writer.writerows(
            [example.get(column.name, "") for column in TEMPLATE_COLUMNS] for example in EXAMPLE_ROWS
        )
