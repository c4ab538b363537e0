"""Options more than one command takes, declared once."""

from __future__ import annotations

import click

from core.vocabulary import DEFAULT_BLANK_CELLS, BlankCells
from producer.fields import FIELDS
from producer.mapping import IGNORE, normalise

blank_cells_option = click.option(
    "--blank-cells",
    type=click.Choice(tuple(BlankCells)),
    default=DEFAULT_BLANK_CELLS,
    show_default=True,
    help="clear: a blank cell clears the stored value; keep: it leaves the stored value as it is.",
)

# A field as its name ("first_name") or its template header ("First name"), compared by normalise.
_FIELD_OF = {normalise(text): field.name for field in FIELDS for text in (field.name, field.header)}


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
        fields = ", ".join(f.name for f in FIELDS)
        raise click.BadParameter(f"{value!r}: {field!r} is not a field; choose one of {fields}, or {IGNORE}")
    return header, name


def _choices(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str | None]:
    return dict(parse_map(value) for value in values)


map_option = click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="HEADER=FIELD",
    callback=_choices,
    help="What a column means: a field (its name or template header), or ignore (HEADER= or HEADER=ignore)."
    " Repeatable. An import remembers the choices for the tenant's later files.",
)
