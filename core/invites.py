"""Invitations: who is invited, when, and sending each one at most once in effect.

PostgreSQL holds the schedule: each decision to send (an import's ``now`` or
``at``, an ``invites send``) is an ``invite_batches`` row with a due time,
and the broker holds one delayed message per batch. When it fires, the batch
is released and fans out to one send message per invite. If Redis loses the
delayed message, or a worker dies before sending it, the housekeeping loop of
every worker process releases the batch once it is overdue: an invite is
never silently dropped.

Exactly once in effect: an invite is claimed in the database (``sending``)
before the e-mail goes out and marked ``sent`` right after the server accepts
it. A redelivered message finds it claimed or sent and sends nothing. The one
window left is between the server's acceptance and the mark: if the worker
dies exactly there, the claim times out (``INVITE_CLAIM_TIMEOUT_S``) and the
invite is sent again, with the same Message-ID, so mail systems that
de-duplicate on it show one message.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog

from core.db import QUERIES
from core.mail import Invitation, Mailer, MailError, compose, message_id
from core.settings import Settings
from core.vocabulary import BatchState, InviteOption, InviteOutcome, InviteState, PersonStatus
from core.webhooks.events import settle_invite

DATABASE_NOW = QUERIES["database_now"]
INSERT_INVITE_BATCH = QUERIES["insert_invite_batch"]
PLAN_CHECKS_GENERICALLY = QUERIES["plan_checks_generically"]
INVITE_IMPORT_PEOPLE = QUERIES["invite_import_people"]
TAKE_RATE_PERMIT = QUERIES["take_rate_permit"]
PLAN_FOR_PARAMETERS_AGAIN = QUERIES["plan_for_parameters_again"]
LOCK_INVITE_BATCH = QUERIES["lock_invite_batch"]
RELEASE_INVITE_BATCH = QUERIES["release_invite_batch"]
INVITES_TO_SEND = QUERIES["invites_to_send"]
SCHEDULED_BATCHES_OF_IMPORT = QUERIES["scheduled_batches_of_import"]
CLAIM_INVITE = QUERIES["claim_invite"]
INVITE_STATE = QUERIES["invite_state"]
RELEASE_INVITE_CLAIM = QUERIES["release_invite_claim"]
OVERDUE_INVITE_BATCHES = QUERIES["overdue_invite_batches"]
CANCEL_IMPORT_INVITE_BATCHES = QUERIES["cancel_import_invite_batches"]
CANCEL_IMPORT_INVITES = QUERIES["cancel_import_invites"]
CANCEL_INVITE_OF_INACTIVE_PERSON = QUERIES["cancel_invite_of_inactive_person"]
FAIL_INVITE = QUERIES["fail_invite"]
MARK_INVITE_SENT = QUERIES["mark_invite_sent"]
RETRY_FAILED_INVITES = QUERIES["retry_failed_invites"]
SCHEDULE_PENDING_INVITES = QUERIES["schedule_pending_invites"]
SCHEDULE_RENAMED_INVITES = QUERIES["schedule_renamed_invites"]

log = structlog.get_logger(__name__)

FANOUT_BATCH = 1_000
SendInvites = Callable[[list[int]], Awaitable[None]]
RatePermit = Callable[[], Awaitable[bool]]
SendLater = Callable[[int, int], Awaitable[None]]
# Told the import whose last open invite a send settled (its deliveries to send).
InvitesCompleted = Callable[[int], Awaitable[None]]
# An invite over the shared rate comes back this much later.
RATE_PAUSE_MS = 1_000


@dataclass(frozen=True)
class Batch:
    """A scheduled batch: its id and when it is due."""

    id: int
    send_at: datetime


async def invite_import_people(
    conn: asyncpg.Connection, import_id: int, tenant_id: str, option: str, send_at: datetime | None
) -> Batch | None:
    """Record the invites of a finished import; return the batch to schedule, if any.

    ``none``: the invites are pending, sent later on request. ``now`` and
    ``at``: they join a new batch due now or at ``send_at``. Must run in the
    transaction that finishes the import.
    """
    if option == InviteOption.NONE:
        await _insert_import_invites(conn, import_id, tenant_id, InviteState.PENDING, None, None)
        return None
    due = send_at if option == InviteOption.AT and send_at is not None else await conn.fetchval(DATABASE_NOW)
    row = await conn.fetchrow(INSERT_INVITE_BATCH, tenant_id, import_id, due)
    await _insert_import_invites(conn, import_id, tenant_id, InviteState.SCHEDULED, row["id"], row["send_at"])
    return Batch(row["id"], row["send_at"])


async def _insert_import_invites(
    conn: asyncpg.Connection,
    import_id: int,
    tenant_id: str,
    status: str,
    batch_id: int | None,
    due: datetime | None,
) -> None:
    # One invite per person the import names: its foreign-key checks run once
    # per invite, and keep their plans only with the generic plan mode (see
    # plan_checks_generically).
    await conn.execute(PLAN_CHECKS_GENERICALLY)
    await conn.execute(INVITE_IMPORT_PEOPLE, import_id, tenant_id, status, batch_id, due)
    await conn.execute(PLAN_FOR_PARAMETERS_AGAIN)


async def schedule_pending_invites(
    conn: asyncpg.Connection, tenant_id: str, import_id: int | None, send_at: datetime | None
) -> tuple[Batch | None, int]:
    """``invites send``: put the tenant's pending invites in a new batch; return it and their number.

    With nothing pending no batch is kept (None, 0).
    """
    return await _new_batch(conn, SCHEDULE_PENDING_INVITES, tenant_id, import_id, send_at)


async def resend_renamed_invites(
    conn: asyncpg.Connection, tenant_id: str, import_id: int | None, send_at: datetime | None
) -> tuple[Batch | None, int]:
    """``invites send --resend-renamed``: the tenant's invites sent to an address their person no
    longer has (renamed since) join a new batch, to go to the address they have now."""
    return await _new_batch(conn, SCHEDULE_RENAMED_INVITES, tenant_id, import_id, send_at)


async def retry_failed_invites(
    conn: asyncpg.Connection, tenant_id: str, import_id: int | None
) -> tuple[Batch | None, int]:
    """``invites retry``: put the tenant's failed invites (of active people) in a batch due now.

    Returns the batch and how many joined it; (None, 0) when none had failed.
    Each is then sent once in effect, as any scheduled invite (claimed before
    the e-mail goes out).
    """
    return await _new_batch(conn, RETRY_FAILED_INVITES, tenant_id, import_id, None)


async def _new_batch(
    conn: asyncpg.Connection, statement: str, tenant_id: str, import_id: int | None, send_at: datetime | None
) -> tuple[Batch | None, int]:
    """A batch due at ``send_at`` (now when None) holding the invites ``statement`` moves into it."""
    try:
        async with conn.transaction():
            due = send_at or await conn.fetchval(DATABASE_NOW)
            row = await conn.fetchrow(INSERT_INVITE_BATCH, tenant_id, import_id, due)
            status = await conn.execute(statement, tenant_id, import_id, row["id"], row["send_at"])
            count = int(status.split()[-1])
            if count == 0:
                raise _NothingPending
    except _NothingPending:
        return None, 0
    return Batch(row["id"], row["send_at"]), count


class _NothingPending(Exception):
    """Rolls back a batch that would hold no invite."""


async def release_batch(
    conn: asyncpg.Connection, batch_id: int, send_invites: SendInvites, *, retry_after_s: float
) -> int | datetime:
    """Fan a due batch out to one send message per scheduled invite.

    Returns the number of invites sent to the queue, or, when the batch is not
    due yet (a delayed message may fire early: it was capped, or clocks
    differ), the time it is due. Safe to repeat: a released batch is fanned
    out again only for invites still scheduled and not attempted in the last
    ``retry_after_s`` seconds.
    """
    async with conn.transaction():
        batch = await conn.fetchrow(LOCK_INVITE_BATCH, batch_id)
        if batch is None or batch["state"] == BatchState.CANCELLED:
            return 0
        if batch["state"] == InviteState.SCHEDULED and batch["send_at"] > await conn.fetchval(DATABASE_NOW):
            return batch["send_at"]  # type: ignore[no-any-return]
        await conn.execute(RELEASE_INVITE_BATCH, batch_id)
    sent, after = 0, 0
    while True:
        records = await conn.fetch(INVITES_TO_SEND, batch_id, retry_after_s, after, FANOUT_BATCH)
        if not records:
            break
        page = [r["id"] for r in records]
        await send_invites(page)
        sent, after = sent + len(page), page[-1]
    log.info("invites.released", batch_id=batch_id, invites=sent)
    return sent


async def scheduled_batches(conn: asyncpg.Connection, import_id: int) -> list[Batch]:
    """An import's batches still waiting for their time."""
    return [Batch(r["id"], r["send_at"]) for r in await conn.fetch(SCHEDULED_BATCHES_OF_IMPORT, import_id)]


def new_token() -> tuple[str, bytes]:
    """An unguessable accept token and the hash stored in its place."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).digest()


async def claim_invite(
    conn: asyncpg.Connection, invite_id: int, *, accept_base_url: str, mail_from: str, claim_timeout_s: int
) -> Invitation | None:
    """Claim an invite for sending; None when there is nothing to send.

    Nothing to send: already sent, being sent by another worker, failed or
    cancelled, or the person was deactivated (then the invite is cancelled).
    """
    token, token_hash = new_token()
    row = await conn.fetchrow(
        CLAIM_INVITE, invite_id, token_hash, message_id(invite_id, mail_from), claim_timeout_s
    )
    if row is None:
        state = await conn.fetchrow(INVITE_STATE, invite_id)
        if state is not None and state["person_status"] != PersonStatus.ACTIVE:
            # It may have been its import's last open invite: invites.completed
            # then (its deliveries go out with housekeeping's next pass).
            await settle_invite(conn, invite_id, CANCEL_INVITE_OF_INACTIVE_PERSON)
            log.info("invite.cancelled", invite_id=invite_id, reason="person deactivated")
        return None
    return Invitation(
        invite_id=invite_id,
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        tenant_name=row["tenant_name"],
        language=row["language"] or row["default_language"],
        accept_url=f"{accept_base_url.rstrip('/')}/{token}",
    )


async def may_need_sending(conn: asyncpg.Connection, invite_id: int) -> bool:
    """False when the invite is sent, failed or cancelled: a send message for it has nothing to do."""
    state = await conn.fetchrow(INVITE_STATE, invite_id)
    return state is not None and state["status"] in (InviteState.SCHEDULED, InviteState.SENDING)


async def mark_sent(conn: asyncpg.Connection, invite_id: int) -> int | None:
    """Record that the server accepted the invite's e-mail.

    Returns the invite's import when this settled its last open invite
    (``invites.completed`` recorded: its deliveries are the caller's to send).
    """
    return await settle_invite(conn, invite_id, MARK_INVITE_SENT)


async def release_claim(conn: asyncpg.Connection, invite_id: int, reason: str) -> None:
    """A transient failure: give the invite back, to be retried."""
    await conn.execute(RELEASE_INVITE_CLAIM, invite_id, reason)


async def fail_invite(conn: asyncpg.Connection, invite_id: int, reason: str) -> int | None:
    """A permanent failure, with the server's reason; returns as ``mark_sent`` does."""
    completed = await settle_invite(conn, invite_id, FAIL_INVITE, reason)
    log.warning("invite.failed", invite_id=invite_id, reason=reason)
    return completed


async def overdue_batches(
    conn: asyncpg.Connection, grace_s: float, claim_timeout_s: float, *, sends_queued: bool = False
) -> list[int]:
    """Batches whose release the broker should have triggered by now (see core/sql/invites.sql).

    ``sends_queued``: the broker holds send messages, so released batches are
    still draining and are left alone.
    """
    rows = await conn.fetch(OVERDUE_INVITE_BATCHES, grace_s, claim_timeout_s, not sends_queued)
    return [r["id"] for r in rows]


async def cancel_import_invites(conn: asyncpg.Connection, import_id: int) -> int:
    """Cancel an import's unsent invites and scheduled batches; return how many invites."""
    await conn.execute(CANCEL_IMPORT_INVITE_BATCHES, import_id)
    status = await conn.execute(CANCEL_IMPORT_INVITES, import_id)
    return int(status.split()[-1])


async def take_rate_permit(pool: asyncpg.Pool, name: str, per_second: int) -> bool:
    """One permit of the rate ``name`` shared through PostgreSQL (the broker keeps none: RabbitMQ)."""
    async with pool.acquire() as conn:
        return await conn.fetchval(TAKE_RATE_PERMIT, name, per_second) is not None


async def deliver_invite(
    pool: asyncpg.Pool,
    invite_id: int,
    settings: Settings,
    mailer: Mailer,
    rate_permit: RatePermit,
    send_later: SendLater,
    invites_completed: InvitesCompleted | None = None,
) -> InviteOutcome:
    """Send one invitation e-mail, once in effect; return what happened.

    ``NOT_NEEDED`` (sent, cancelled or claimed already), ``LATER`` (over
    the shared rate: ``send_later`` brings it back without using a retry),
    ``SENT``. A permanent refusal fails the invite with the server's reason
    and returns ``FAILED``; a transient one releases the claim and raises
    ``MailError``, for the caller's retries. No connection is held while the
    mail server answers. ``invites_completed`` hears of the import whose
    last open invite this one was.
    """
    async with pool.acquire() as conn:
        # A repeated message (redelivered, or a repeated fan-out) must not
        # use up a share of the rate that an unsent invite is waiting for.
        if not await may_need_sending(conn, invite_id):
            return InviteOutcome.NOT_NEEDED
    if not await rate_permit():
        await send_later(invite_id, RATE_PAUSE_MS)
        return InviteOutcome.LATER
    async with pool.acquire() as conn:
        invitation = await claim_invite(
            conn,
            invite_id,
            accept_base_url=settings.accept_base_url,
            mail_from=settings.mail_from,
            claim_timeout_s=settings.invite_claim_timeout_s,
        )
    if invitation is None:
        return InviteOutcome.NOT_NEEDED
    try:
        await mailer.send(compose(invitation, settings.mail_from))
    except MailError as exc:
        async with pool.acquire() as conn:
            if exc.permanent:
                completed = await fail_invite(conn, invite_id, str(exc))
                if completed is not None and invites_completed is not None:
                    await invites_completed(completed)
                return InviteOutcome.FAILED
            await release_claim(conn, invite_id, str(exc))
        log.warning("invite.retrying", reason=str(exc))
        raise
    async with pool.acquire() as conn:
        completed = await mark_sent(conn, invite_id)
    log.info("invite.sent")
    if completed is not None and invites_completed is not None:
        await invites_completed(completed)
    return InviteOutcome.SENT
