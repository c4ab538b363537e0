"""The shared command-line options: ``--map HEADER=FIELD``."""

from __future__ import annotations

import click
import pytest

from producer.cli.options import parse_map


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("Titre=job_title", ("Titre", "job_title")),
        ("Titre = Job title", ("Titre", "job_title")),
        ("Prénom=FIRST-NAME", ("Prénom", "first_name")),
        ("Notes=", ("Notes", None)),
        ("Notes=Ignore", ("Notes", None)),
        ("a=b=email", ("a=b", "email")),  # split on the last "="
    ],
)
def test_parse_map(value: str, parsed: tuple[str, str | None]) -> None:
    assert parse_map(value) == parsed


@pytest.mark.parametrize("value", ["Titre", "=email", " = ", "Titre=poste"])
def test_a_malformed_map_names_the_value_and_the_form(value: str) -> None:
    with pytest.raises(click.BadParameter) as error:
        parse_map(value)

    assert repr(value) in str(error.value)
