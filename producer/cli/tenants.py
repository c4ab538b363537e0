"""The ``tenant`` group: ``tenant set``."""

from __future__ import annotations

import json

import click

from core.settings import get_settings
from producer.cli.running import async_command
from producer.control import update_tenant


@click.group()
def tenant() -> None:
    """Tenants: name, timezone (for times without an offset), default language."""


@tenant.command("set")
@click.argument("tenant_id")
@click.option("--name", help="Shown in invitation e-mails.")
@click.option("--timezone", help="IANA name, e.g. Europe/Paris.")
@click.option("--language", help="Default language of its people (ISO 639-1, e.g. fr).")
@async_command
async def tenant_set(tenant_id: str, name: str | None, timezone: str | None, language: str | None) -> None:
    """Create or change a tenant."""
    row = await update_tenant(get_settings(), tenant_id, name, timezone, language)
    click.echo(json.dumps(row))
