"""Getting started: ``migrate`` (the database and its schema) and ``template`` (the CSV template)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

import schema
from core.db import connection, ensure_database
from core.logs import redact
from core.settings import get_settings
from producer.cli.running import async_command, fail
from producer.template import write_template


@click.command()
@async_command
async def migrate() -> None:
    """Create the database if needed and apply schema migrations (idempotent)."""
    settings = get_settings()
    if await ensure_database(settings.database_url):
        click.echo(f"created database {redact(settings.database_url)}")
    async with connection(settings.database_url) as conn:
        applied = await schema.migrate(conn)
    click.echo(
        "applied " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
        if applied
        else "schema is up to date"
    )


@click.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout)."
)
@click.option("--example", is_flag=True, help="Add a few realistic rows to start from.")
def template(output: Path | None, example: bool) -> None:
    """Write the CSV template."""
    if output is None:
        write_template(sys.stdout, example=example)
        return
    try:
        with output.open("w", newline="", encoding="utf-8") as out:
            write_template(out, example=example)
    except OSError as exc:
        fail(f"cannot use {exc.filename}: {exc.strerror}", 1)
    click.echo(f"wrote {output}", err=True)
