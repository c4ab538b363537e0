"""Options more than one command takes, declared once."""

from __future__ import annotations

import click

from worker.vocabulary import BLANK_CELLS, DEFAULT_BLANK_CELLS

blank_cells_option = click.option(
    "--blank-cells",
    type=click.Choice(BLANK_CELLS),
    default=DEFAULT_BLANK_CELLS,
    show_default=True,
    help="clear: a blank cell clears the stored value; keep: it leaves the stored value as it is.",
)
