"""The ``token`` group: the HTTP API's bearer tokens (``token create``, ``token revoke``)."""

from __future__ import annotations

import click

from core.db import connection
from core.errors import BulkImportError
from core.settings import get_settings
from producer.cli.running import async_command
from producer.web.tokens import create_token, describe, revoke_token


@click.group()
def token() -> None:
    """Bearer tokens of the HTTP API (service tokens per tenant, operator tokens)."""


@token.command("create")
@click.option("--tenant", help="The tenant the token acts for (a service token).")
@click.option("--operator", is_flag=True, help="A token for operators: every tenant.")
@click.option(
    "--admin", is_flag=True, help="With --tenant: a tenant admin's token, which also signs in at /admin."
)
@click.option(
    "--scim",
    is_flag=True,
    help="With --tenant: an identity provider's token for /scim/v2 (SCIM 2.0), and nothing else.",
)
@click.option("--label", help="Who or what uses it; the import history shows it.")
@async_command
async def token_create(
    tenant: str | None, operator: bool, admin: bool, scim: bool, label: str | None
) -> None:
    """Make a token; the token itself is printed last, on stdout, and only once."""
    if operator == (tenant is not None):
        raise BulkImportError("give either --tenant T (a service token) or --operator")
    if admin and operator:
        raise BulkImportError(
            "--admin is for a tenant's token: operators sign in with theirs and choose a tenant"
        )
    if scim and (operator or admin):
        raise BulkImportError("--scim is a tenant's token for /scim/v2 only: give --tenant T --scim alone")
    async with connection(get_settings().database_url) as conn:
        new = await create_token(conn, tenant, label, admin=admin, scim=scim)
    click.echo(describe(new), err=True)
    click.echo(new.secret)


@token.command("revoke")
@click.argument("token_id", type=int)
@async_command
async def token_revoke(token_id: int) -> None:
    """Revoke a token at once (by the id `token create` printed)."""
    async with connection(get_settings().database_url) as conn:
        click.echo(await revoke_token(conn, token_id))
