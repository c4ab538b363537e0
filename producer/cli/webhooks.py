"""The ``webhook`` group: a tenant's endpoints (``add``, ``list``, ``remove``, ``rotate``) and
their deliveries (``deliveries``, ``redeliver``)."""

from __future__ import annotations

import json

import click

from core.db import connection
from core.settings import get_settings
from core.vocabulary import DeliveryState, EventType
from core.webhooks import endpoints
from producer.cli.options import values_of
from producer.cli.running import async_command
from producer.webhooks import list_deliveries, redeliver


@click.group()
def webhook() -> None:
    """Webhooks: signed POSTs to a tenant's services when its imports end, fail or wait."""


@webhook.command("add")
@click.option("--tenant", required=True)
@click.argument("url")
@click.option(
    "--events",
    help=f"Comma-separated event types (default: all of {', '.join(tuple(EventType))}).",
)
@async_command
async def webhook_add(tenant: str, url: str, events: str | None) -> None:
    """Register URL (https://) for the tenant; its signing secret is printed last, on stdout, once."""
    chosen = [e.strip() for e in events.split(",") if e.strip()] if events else None
    settings = get_settings()
    async with connection(settings.database_url) as conn:
        new = await endpoints.add_endpoint(
            conn, tenant, url, chosen, allow_loopback=settings.webhook_allow_loopback
        )
    shown = new.endpoint
    click.echo(
        f"endpoint {shown['id']} for {tenant}: {shown['url']} ({', '.join(shown['events'])})", err=True
    )
    click.echo(new.secret)


@webhook.command("list")
@click.option("--tenant", required=True)
@async_command
async def webhook_list(tenant: str) -> None:
    """The tenant's endpoints with their deliveries' counts, as JSON lines."""
    async with connection(get_settings().database_url) as conn:
        for endpoint in await endpoints.list_endpoints(conn, tenant):
            click.echo(json.dumps(endpoint))


@webhook.command("remove")
@click.option("--tenant", required=True)
@click.argument("endpoint_id", type=int)
@async_command
async def webhook_remove(tenant: str, endpoint_id: int) -> None:
    """Remove an endpoint and its deliveries (the events stay in the feed)."""
    async with connection(get_settings().database_url) as conn:
        await endpoints.remove_endpoint(conn, tenant, endpoint_id)
    click.echo(f"endpoint {endpoint_id} removed")


@webhook.command("rotate")
@click.option("--tenant", required=True)
@click.argument("endpoint_id", type=int)
@async_command
async def webhook_rotate(tenant: str, endpoint_id: int) -> None:
    """A new signing secret (printed once); the old one signs too for WEBHOOK_ROTATION_GRACE_S."""
    settings = get_settings()
    async with connection(settings.database_url) as conn:
        secret = await endpoints.rotate_secret(conn, tenant, endpoint_id, settings.webhook_rotation_grace_s)
    hours = settings.webhook_rotation_grace_s / 3600
    click.echo(f"endpoint {endpoint_id}: new secret; the old one is also sent for {hours:g} h", err=True)
    click.echo(secret)


@webhook.command("deliveries")
@click.option("--tenant", help="Only this tenant's (default: every tenant's).")
@click.option("--state", type=values_of(DeliveryState))
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@async_command
async def webhook_deliveries(tenant: str | None, state: str | None, limit: int) -> None:
    """The latest deliveries, newest first, as JSON lines (pending ones with their last error)."""
    async with connection(get_settings().database_url) as conn:
        for delivery in await list_deliveries(conn, tenant, state, limit):
            click.echo(json.dumps(delivery))


@webhook.command("redeliver")
@click.argument("delivery_id", type=int)
@click.option("--again", is_flag=True, help="Also a delivery the receiver already acknowledged.")
@async_command
async def webhook_redeliver(delivery_id: int, again: bool) -> None:
    """Attempt a dead (or failing) delivery again now, with its retries afresh."""
    async with connection(get_settings().database_url) as conn:
        click.echo(await redeliver(conn, delivery_id, None, again=again))
