"""The ``bulk-import`` command line: thin click commands over the producer,
the worker's lifecycle functions and the reports.

:data:`main` is the click group (the console script ``bulk-import``). Its
commands live one family per module and each module is imported only when one
of its commands runs (:class:`~producer.cli.lazy.LazyGroup`):

- ``lazy``: :class:`LazyGroup`, the group that loads commands on first use.
- ``running``: :func:`run_async` / :func:`async_command`, where an expected
  failure (``BulkImportError``, an unreachable service) becomes one line on
  stderr and an exit code, never a traceback; ``fail`` and ``emit``.
- ``basics``: ``migrate`` and ``template``.
- ``imports``: an import's life: ``run``, ``status``, ``errors``, ``export``,
  ``cancel``, ``resume``.
- ``undo``: ``undo`` (and its ``--dry-run`` preview), and how an undo's status reads.
- ``review``: ``review``, drawn by :mod:`producer.cli.review_report`.
- ``invites``: the ``invites`` group (``invites send``, ``invites retry``).
- ``tenants``: the ``tenant`` group (``tenant set``).
- ``tokens``: the ``token`` group (``token create``, ``token revoke``).
- ``webhooks``: the ``webhook`` group (``add``, ``list``, ``remove``, ``rotate``,
  ``deliveries``, ``redeliver``).
- ``sources``: the ``source`` group (``add``, ``list``, ``test``, ``run``, ``approve``,
  ``pause``, ``resume``, ``remove``, ``runs``, ``new-key``): scheduled sources.
- ``demo``: ``demo``, the end-to-end demo (:mod:`producer.demo`).
"""

from __future__ import annotations

import click

from core.logs import configure_logging
from core.settings import get_settings
from producer.cli.lazy import LazyGroup

COMMANDS = {
    "migrate": "producer.cli.basics:migrate",
    "template": "producer.cli.basics:template",
    "run": "producer.cli.imports:run",
    "status": "producer.cli.imports:status",
    "errors": "producer.cli.imports:errors",
    "export": "producer.cli.imports:export",
    "cancel": "producer.cli.imports:cancel",
    "resume": "producer.cli.imports:resume",
    "undo": "producer.cli.undo:undo",
    "review": "producer.cli.review:review_command",
    "invites": "producer.cli.invites:invites",
    "tenant": "producer.cli.tenants:tenant",
    "token": "producer.cli.tokens:token",
    "webhook": "producer.cli.webhooks:webhook",
    "source": "producer.cli.sources:source",
    "demo": "producer.cli.demo:demo",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
def main() -> None:
    """Bulk people import: review and import a CSV of people for a tenant."""
    settings = get_settings()
    configure_logging(settings.cli_log_level, settings.log_format)
