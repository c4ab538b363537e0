"""The ``invites`` group: ``invites send``, ``invites retry``."""

from __future__ import annotations

import click

from core.settings import get_settings
from producer.cli.imports import tenant_timezone_of
from producer.cli.running import async_command
from producer.control import retry_failed_invites, send_pending_invites
from producer.timezones import parse_send_at


@click.group()
def invites() -> None:
    """Invitation e-mails."""


@invites.command("send")
@click.option("--tenant", required=True)
@click.option("--import", "import_id", type=int, help="Only the invites of this import.")
@click.option("--send-at", help="ISO 8601 time; without an offset, the tenant's timezone. Default: now.")
@async_command
async def invites_send(tenant: str, import_id: int | None, send_at: str | None) -> None:
    """Send, or schedule, the tenant's pending invites."""
    settings = get_settings()
    moment = parse_send_at(send_at, await tenant_timezone_of(tenant)) if send_at else None
    click.echo(await send_pending_invites(settings, tenant, import_id, moment))


@invites.command("retry")
@click.option("--tenant", required=True)
@click.option("--import", "import_id", type=int, help="Only the invites of this import.")
@async_command
async def invites_retry(tenant: str, import_id: int | None) -> None:
    """Send the tenant's failed invites again, now (people since deactivated are left out)."""
    click.echo(await retry_failed_invites(get_settings(), tenant, import_id))
