"""The CSV template admins fill in, optionally with a few example rows."""

from __future__ import annotations

import csv
from typing import TextIO

from producer.fields import TEMPLATE_HEADERS

EXAMPLE_ROWS: tuple[tuple[str, ...], ...] = (
    (
        "Ada",
        "Lovelace",
        "ada.lovelace@example.com",
        "Head of Engineering",
        "Engineering",
        "",
        "Manager",
        "English",
        "London",
    ),
    (
        "Grace",
        "Hopper",
        "grace.hopper@example.com",
        "Staff Engineer",
        "Engineering",
        "Architecture; Security",
        "Learner",
        "en",
        "New York",
    ),
    (
        "Marie",
        "Curie",
        "marie.curie@example.com",
        "Research Lead",
        "Research",
        "Engineering",
        "Manager",
        "fr",
        "Paris",
    ),
    (
        "Émile",
        "Durand",
        "emile.durand@example.com",
        "Research Assistant",
        "Research",
        "",
        "",
        "French",
        "Lyon",
    ),
    ("Lena", "Schmidt", "lena.schmidt@example.com", "People Partner", "People", "", "Admin", "de", "Berlin"),
)


def write_template(out: TextIO, *, example: bool = False) -> None:
    """Write the template's header row, and with ``example`` a few filled-in rows."""
    writer = csv.writer(out)
    writer.writerow(TEMPLATE_HEADERS)
    if example:
        writer.writerows(EXAMPLE_ROWS)
