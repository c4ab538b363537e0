"""Options more than one command takes, declared once; the import's options become one object.

``review_options`` (``review``) and ``import_options`` (``run``) declare the
click options of :class:`~core.intake.options.ImportOptions` and hand the
command a checked ``options`` instead of one argument each. A bad option ends
the command as a usage error, in ``ImportOptions``' words with the option
spelled as the command line spells it (``--send-at``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

import click

from core.columns import COLUMNS
from core.intake.mapping import IGNORE, normalise
from core.intake.options import OPTION_NAMES, ImportOptions, OptionError, parse_time
from core.vocabulary import DEFAULT_BLANK_CELLS, DEFAULT_MODE, FILE_MODES, BlankCells, InviteOption, MatchKey
from producer.cli.running import fail

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

# A field as its name ("first_name") or its template header ("First name"), compared by normalise.
_FIELD_OF = {normalise(text): field.name for field in COLUMNS for text in (field.name, field.header)}


def parse_map(value: str) -> tuple[str, str | None]:
    """``Header=field`` → (header, field name); ``Header=`` or ``Header=ignore`` → (header, None)."""
    header, equals, field = value.rpartition("=")
    header, field = header.strip(), field.strip()
    expected = 'expected "Header=field", "Header=" or "Header=ignore"'
    if not equals or not header:
        raise click.BadParameter(f"{value!r}: {expected}")
    if not field or field.casefold() == IGNORE:
        return header, None
    name = _FIELD_OF.get(normalise(field))
    if name is None:
        fields = ", ".join(f.name for f in COLUMNS)
        raise click.BadParameter(f"{value!r}: {field!r} is not a field; choose one of {fields}, or {IGNORE}")
    return header, name


def _choices(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str | None]:
    return dict(parse_map(value) for value in values)


def values_of(members: Iterable[StrEnum]) -> click.Choice[str]:
    """A choice of enum members by their values (click would show an Enum's member names)."""
    return click.Choice([member.value for member in members])


def cli_spelling(option: str) -> str:
    """How the command line spells an option of ``ImportOptions`` (``send_at`` → ``--send-at``)."""
    return "--" + option.replace("_", "-")


def _mode_option(required: bool) -> Decorator:
    if required:
        return click.option("--mode", type=values_of(FILE_MODES), required=True)
    return click.option("--mode", type=values_of(FILE_MODES), default=DEFAULT_MODE.value, show_default=True)


_REVIEWED = (
    click.option(
        "--blank-cells",
        type=values_of(BlankCells),
        default=DEFAULT_BLANK_CELLS.value,
        show_default=True,
        help="clear: a blank cell clears the stored value; keep: it leaves the stored value as it is.",
    ),
    click.option(
        "--map",
        "mapping",
        multiple=True,
        metavar="HEADER=FIELD",
        callback=_choices,
        help="What a column means: a field (its name or template header), or ignore (HEADER= or"
        " HEADER=ignore). Repeatable. An import remembers the choices for the tenant's later files.",
    ),
    click.option("--sheet", help="A workbook's sheet (default: the first whose header matches)."),
    click.option(
        "--match-by",
        type=values_of(MatchKey),
        help="How a row finds the stored person it is: email (a Previous email column renames) or"
        " employee-id (a known Employee ID with another address is a rename). Default: the key the"
        " tenant's last import was given, else email; an import remembers it for the tenant.",
    ),
)
_IMPORTED = (
    click.option(
        "--invites", type=values_of(InviteOption), default=InviteOption.NONE.value, show_default=True
    ),
    click.option(
        "--send-at", help="With --invites at: ISO 8601 time; without an offset, the tenant's timezone."
    ),
    click.option(
        "--allow-mass-deactivation",
        is_flag=True,
        help="Let a sync import deactivate more than the configured share.",
    ),
    click.option("--external-id", help="Your own reference for the import, sent back in its webhook events."),
)


def _with_options(parameters: tuple[Decorator, ...]) -> Decorator:
    """Declare ``parameters`` on a command and pass it ``options`` (an ImportOptions) instead."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in list(kwargs) if name in OPTION_NAMES}
            if given.get("send_at") is not None:
                given["send_at"] = _checked(parse_time, "send_at", given["send_at"])
            kwargs["options"] = _checked(ImportOptions, **given)
            return command(*args, **kwargs)

        decorated: Callable[..., Any] = wrapper
        for parameter in reversed(parameters):
            decorated = parameter(decorated)
        return decorated

    return decorate


def _checked(make: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return make(*args, **kwargs)
    except OptionError as refused:
        fail(refused.spelled(cli_spelling(refused.option)), refused.exit_code)


def review_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--mode`` (default upsert) and the other options a review reads → ``options``."""
    return _with_options((_mode_option(False), *_REVIEWED))(command)


def import_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Every option of an import (``--mode`` required) → ``options``."""
    return _with_options((_mode_option(True), *_REVIEWED, *_IMPORTED))(command)


def source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """A source's import options (``--mode`` default upsert, the reviewed ones, invites) → ``options``."""
    return _with_options((_mode_option(False), *_REVIEWED, *_IMPORTED))(command)
