"""Bearer tokens of the HTTP API: made, checked and revoked.

A token is ``bi_`` followed by 43 URL-safe characters (256 random bits). Only
its SHA-256 hash is stored (``api_tokens.token_hash``): the token is shown once,
by ``bulk-import token create``, and a stolen database does not yield working
tokens. A plain hash is enough because the tokens are random, not chosen by
people: there is nothing to guess that a slow, salted hash would protect.

A *service* token belongs to one tenant and sees only that tenant's imports;
an *admin* token is a service token that may also sign in to the tenant
admins' pages in a browser (:mod:`producer.web.admins`); an *operator* token
(no tenant) sees every tenant's.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import asyncpg

from core.errors import BulkImportError
from core.tenants import ensure_tenant
from producer.queries import QUERIES

INSERT_API_TOKEN = QUERIES["insert_api_token"]
FIND_API_TOKEN = QUERIES["find_api_token"]
REVOKE_API_TOKEN = QUERIES["revoke_api_token"]
API_TOKEN_EXISTS = QUERIES["api_token_exists"]
LIST_SCIM_TOKENS = QUERIES["list_scim_tokens"]
REVOKE_SCIM_TOKEN = QUERIES["revoke_scim_token"]

TOKEN_PREFIX = "bi_"
# The tenants table's own rule for ids (schema/0001_initial.sql).
TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: a token's id and its tenant (None: an operator)."""

    token_id: int
    tenant: str | None
    label: str | None = None
    admin: bool = False
    scim: bool = False  # scope ``scim``: /scim/v2 only

    @property
    def is_operator(self) -> bool:
        return self.tenant is None


@dataclass(frozen=True)
class NewToken:
    """A token just made: the only time its secret is known."""

    id: int
    tenant: str | None
    label: str | None
    secret: str
    admin: bool = False
    scim: bool = False


def hash_token(secret: str) -> bytes:
    """The SHA-256 digest stored for a token."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def check_tenant_id(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant id, or say what one looks like."""
    if not TENANT_ID.fullmatch(tenant):
        raise BulkImportError(
            f"{tenant!r} is not a tenant id: use 1 to 63 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return tenant


async def create_token(
    conn: asyncpg.Connection,
    tenant: str | None,
    label: str | None = None,
    *,
    admin: bool = False,
    scim: bool = False,
) -> NewToken:
    """Make a token for ``tenant`` (None: an operator token); store only its hash.

    ``admin``: a tenant admin's token, which may also sign in to the admins'
    pages; ``scim``: an identity provider's token, accepted by ``/scim/v2`` only.
    A tenant that does not exist yet is created, as its first import would.
    """
    if admin and tenant is None:
        raise BulkImportError("an admin token belongs to a tenant: give --tenant T with --admin")
    if scim and (tenant is None or admin):
        raise BulkImportError("a SCIM token belongs to one tenant and is no admin's: give --tenant T --scim")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with conn.transaction():
        if tenant is not None:
            await ensure_tenant(conn, check_tenant_id(tenant))
        row = await conn.fetchrow(INSERT_API_TOKEN, hash_token(secret), tenant, label, admin, scim)
    return NewToken(
        id=row["id"],
        tenant=row["tenant_id"],
        label=row["label"],
        secret=secret,
        admin=row["admin"],
        scim=row["scim"],
    )


async def verify_token(
    conn: asyncpg.Connection | asyncpg.Pool, secret: str, *, scim: bool = False
) -> Principal | None:
    """The principal of a live token, or None for an unknown, malformed or revoked one.

    Scopes do not mix: a SCIM token is unknown everywhere but where ``scim`` is
    asked for (``/scim/v2``), and every other token is unknown there.
    """
    if not _TOKEN_SHAPE.fullmatch(secret):
        return None
    row = await conn.fetchrow(FIND_API_TOKEN, hash_token(secret))
    if row is None or row["scim"] != scim:
        return None
    return Principal(
        token_id=row["id"], tenant=row["tenant_id"], label=row["label"], admin=row["admin"], scim=row["scim"]
    )


async def revoke_token(conn: asyncpg.Connection, token_id: int) -> str:
    """Revoke a token at once; say what was revoked."""
    row = await conn.fetchrow(REVOKE_API_TOKEN, token_id)
    if row is None:
        if await conn.fetchval(API_TOKEN_EXISTS, token_id):
            return f"token {token_id} was already revoked"
        raise BulkImportError(f"no token {token_id}: the id is the one `bulk-import token create` printed")
    scope = f"tenant {row['tenant_id']}" if row["tenant_id"] else "operators"
    return f"token {token_id} ({scope}) revoked"


async def scim_tokens(conn: asyncpg.Connection | asyncpg.Pool, tenant: str) -> list[asyncpg.Record]:
    """The tenant's live SCIM tokens (id, label, created_at), newest first."""
    return list(await conn.fetch(LIST_SCIM_TOKENS, tenant))


async def revoke_scim_token(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str, token_id: int
) -> str | None:
    """Revoke the tenant's live SCIM token ``token_id``; its label (or "") if it was one, else None."""
    row = await conn.fetchrow(REVOKE_SCIM_TOKEN, token_id, tenant)
    return None if row is None else str(row["label"] or "")


def describe(token: NewToken) -> str:
    """What ``token create`` says before it prints the secret."""
    scope = f"tenant {token.tenant}" if token.tenant else "operators (every tenant)"
    if token.admin:
        scope = f"the admins of tenant {token.tenant} (the API, and the browser at /admin)"
    if token.scim:
        scope = f"SCIM provisioning of tenant {token.tenant} (/scim/v2 only)"
    label = f" ({token.label})" if token.label else ""
    return (
        f"token {token.id}{label} for {scope}; it is shown only this once, store it now."
        f" Revoke it with `bulk-import token revoke {token.id}`."
    )
