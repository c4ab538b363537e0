"""Realistic generated people files, for the demo and the benchmark.

Deterministic for a given seed: teams of about ``team_size`` people, each led
by one ``Manager`` row, a few admins, secondary teams, languages and offices.
Rows are generated lazily, so a million-row file never sits in memory.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path

from core.columns import TEMPLATE_HEADERS

FIRST_NAMES = [
    "Ada",
    "Alan",
    "Amara",
    "Ana",
    "Aiko",
    "Bruno",
    "Chen",
    "Chloé",
    "Dara",
    "Diego",
    "Elena",
    "Emeka",
    "Farah",
    "Finn",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jana",
    "Jonas",
    "Kai",
    "Kenji",
    "Lara",
    "Leila",
    "Luca",
    "Mei",
    "Mia",
    "Nadia",
    "Noah",
    "Olga",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sami",
    "Sofia",
    "Tariq",
    "Tess",
    "Uma",
    "Viktor",
    "Wen",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Abara",
    "Bauer",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Martin",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Vogel",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]
DEPARTMENTS = [
    "Sales",
    "Marketing",
    "Engineering",
    "Support",
    "Finance",
    "Legal",
    "Operations",
    "Research",
    "Design",
    "People",
    "Security",
    "Data",
]
TITLES = ("Associate", "Specialist", "Analyst", "Engineer", "Coordinator", "Consultant")
LANGUAGES = ("en", "en", "en", "fr", "de", "es", "French", "German", "")
OFFICES = ("London", "Paris", "Berlin", "Madrid", "New York", "Remote")


def team_name(index: int) -> str:
    """The name of team ``index``: a department and a number."""
    return f"{DEPARTMENTS[index % len(DEPARTMENTS)]} {index // len(DEPARTMENTS) + 1}"


def people_rows(
    count: int, *, seed: int = 7, team_size: int = 12, domain: str = "example.com"
) -> Iterator[list[str]]:
    """``count`` template rows; row ``i`` always describes the same person for a seed."""
    rng = random.Random(seed)
    for i in range(count):
        team = i // team_size
        leads = i % team_size == 0
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        role = "Manager" if leads else ("Admin" if i % 997 == 5 else "Learner")
        secondary = team_name(team + 1) if rng.random() < 0.2 else ""
        yield [
            first,
            last,
            f"{first}.{last}.{i}@{domain}".lower(),
            ("Head of " + team_name(team)) if leads else rng.choice(TITLES),
            team_name(team),
            secondary,
            role,
            rng.choice(LANGUAGES),
            rng.choice(OFFICES),
        ]


def write_people_csv(path: Path, count: int, *, seed: int = 7, skip: frozenset[int] = frozenset()) -> Path:
    """Write a template CSV of ``count`` generated people, leaving out the rows in ``skip``."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(TEMPLATE_HEADERS)
        for index, row in enumerate(people_rows(count, seed=seed)):
            if index not in skip:
                writer.writerow(row)
    return path
