"""``demo``: the main job end to end on a generated file (:mod:`producer.demo.demo`)."""

from __future__ import annotations

from pathlib import Path

import click

from producer.cli.running import fail
from producer.demo.demo import run_demo
from worker.errors import BulkImportError


@click.command()
@click.option("--rows", default=2_000, show_default=True, help="People in the generated file.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Where to write the files.")
@click.option("--embedded", is_flag=True, help="Use throw-away PostgreSQL and Redis even if others answer.")
def demo(rows: int, workdir: Path | None, embedded: bool) -> None:
    """Run the main job end to end on a generated file (embedded services if none answer)."""
    try:
        run_demo(rows, workdir, embedded=embedded)
    except BulkImportError as exc:
        fail(str(exc), exc.exit_code)
