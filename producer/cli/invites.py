"""The ``invites`` group: ``invites send``, ``invites retry``."""

from __future__ import annotations

import click

from core.db import connection
from core.intake.options import in_timezone, parse_time
from core.settings import get_settings
from core.tenants import tenant_timezone
from producer.cli.running import async_command
from producer.control import retry_failed_invites, send_pending_invites


@click.group()
def invites() -> None:
    """Invitation e-mails."""


@invites.command("send")
@click.option("--tenant", required=True)
@click.option("--import", "import_id", type=int, help="Only the invites of this import.")
@click.option("--send-at", help="ISO 8601 time; without an offset, the tenant's timezone. Default: now.")
@click.option(
    "--resend-renamed",
    is_flag=True,
    help="Instead: send again the invitations that went to an address their person no longer has"
    " (renamed since), to the address they have now.",
)
@async_command
async def invites_send(tenant: str, import_id: int | None, send_at: str | None, resend_renamed: bool) -> None:
    """Send, or schedule, the tenant's pending invites (or, with --resend-renamed, re-invite the renamed)."""
    settings = get_settings()
    moment = None
    if send_at:
        async with connection(settings.database_url) as conn:
            moment = in_timezone(parse_time("--send-at", send_at), await tenant_timezone(conn, tenant))
    click.echo(await send_pending_invites(settings, tenant, import_id, moment, resend_renamed=resend_renamed))


@invites.command("retry")
@click.option("--tenant", required=True)
@click.option("--import", "import_id", type=int, help="Only the invites of this import.")
@async_command
async def invites_retry(tenant: str, import_id: int | None) -> None:
    """Send the tenant's failed invites again, now (people since deactivated are left out)."""
    click.echo(await retry_failed_invites(get_settings(), tenant, import_id))
