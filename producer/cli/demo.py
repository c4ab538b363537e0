"""``demo``: the main job end to end on a generated file (:mod:`producer.demo.demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from core.errors import BulkImportError
from producer.cli.running import fail
from producer.demo.demo import run_demo


@click.command()
@click.option("--rows", default=2_000, show_default=True, help="People in the generated file.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Where to write the files.")
@click.option("--embedded", is_flag=True, help="Use throw-away PostgreSQL and Redis even if others answer.")
@click.option("--serve", is_flag=True, help="Then keep the worker and the admins' web pages up until Ctrl-C.")
@click.option("--port", default=8000, show_default=True, help="The web process's port, with --serve.")
def demo(rows: int, workdir: Path | None, embedded: bool, serve: bool, port: int) -> None:
    """Run the main job end to end on a generated file (embedded services if none answer).

    It ends with the address of the admins' pages and an admin token for the demo tenant.
    """
    try:
        run_demo(rows, workdir, embedded=embedded, serve=serve, port=port)
    except BulkImportError as exc:
        fail(str(exc), exc.exit_code)
