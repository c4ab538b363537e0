"""``review``: what an import of a file would do, as a terminal report or JSON; changes nothing."""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

import click

from core.db import connection
from core.errors import FileRejected
from core.intake.options import ImportOptions
from core.intake.review import review_file
from core.intake.review.changes import CHANGES_PAGE
from core.intake.review.review import ROW_DETAILS_CAP
from core.settings import get_settings
from producer.cli.options import review_options
from producer.cli.review_report import render_review
from producer.cli.running import run_async


@click.command("review")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--tenant", required=True, help="The tenant the people belong to.")
@review_options
@click.option("--rows", "row_details", is_flag=True, help="Also show what the import would do with each row.")
@click.option("--json", "as_json", is_flag=True, help="Print the review as JSON.")
@click.option(
    "--all-changes",
    is_flag=True,
    help=f"With --json: the changes of every person to update (at most {ROW_DETAILS_CAP:,}), "
    f"not only the first {CHANGES_PAGE}.",
)
def review_command(
    file: str, tenant: str, options: ImportOptions, row_details: bool, as_json: bool, all_changes: bool
) -> None:
    """Review FILE (CSV, or an xlsx, ods or xls workbook): columns, row problems, what an import would do.

    Changes nothing. Exits 0 when the file can be imported (rows with errors
    are left out) and 2 when it cannot be imported at all.
    """
    changes = ROW_DETAILS_CAP if all_changes else CHANGES_PAGE
    review = run_async(_review_for_cli(file, tenant, options, row_details, as_json, changes))
    if as_json:
        click.echo(json.dumps(review, indent=2, ensure_ascii=False))
    else:
        click.echo(render_review(review, file))
    if not review["importable"]:
        sys.exit(2)


async def _review_for_cli(
    file: str, tenant: str, options: ImportOptions, row_details: bool, as_json: bool, changes: int
) -> dict[str, Any]:
    settings = get_settings()
    source: str | BinaryIO = sys.stdin.buffer if file == "-" else file
    try:
        async with connection(settings.database_url) as conn:
            return await review_file(
                conn,
                source,
                tenant,
                options,
                row_details=row_details,
                changes_limit=changes,
                max_share=settings.sweep_max_share,
            )
    except FileRejected as exc:
        if not as_json:
            raise
        return {
            "tenant": tenant,
            "mode": options.mode,
            "blank_cells": options.blank_cells,
            "importable": False,
            "error": str(exc),
        }
