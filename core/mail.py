"""Invitation e-mail: composing it (text and HTML, in the person's language)
and sending it over SMTP with aiosmtplib, reusing connections.

``SMTP_URL`` forms: ``smtp://host:port`` (STARTTLS when the server offers
it), ``smtp+starttls://`` (STARTTLS required), ``smtps://`` (implicit TLS);
``user:password@`` logs in. Failures are sorted into permanent (a 5xx answer:
the invite is marked failed with the server's words) and transient
(everything else: retried with backoff).
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

import aiosmtplib
import jinja2

from core.errors import BulkImportError, ConfigurationError

LANGUAGES = ("en", "fr", "de", "es")
STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "subject": "You're invited to join {tenant}",
        "greeting": "Hello",
        "body": "{tenant} has invited you to join them. Accept the invitation to set up your account.",
        "action": "Accept the invitation",
        "footer": "If you were not expecting this e-mail, you can ignore it.",
    },
    "fr": {
        "subject": "Vous êtes invité·e à rejoindre {tenant}",
        "greeting": "Bonjour",
        "body": "{tenant} vous invite à les rejoindre. Acceptez l'invitation pour créer votre compte.",
        "action": "Accepter l'invitation",
        "footer": "Si vous n'attendiez pas cet e-mail, vous pouvez l'ignorer.",
    },
    "de": {
        "subject": "Einladung zu {tenant}",
        "greeting": "Hallo",
        "body": "{tenant} hat Sie eingeladen. Nehmen Sie die Einladung an, um Ihr Konto einzurichten.",
        "action": "Einladung annehmen",
        "footer": "Wenn Sie diese E-Mail nicht erwartet haben, können Sie sie ignorieren.",
    },
    "es": {
        "subject": "Te han invitado a unirte a {tenant}",
        "greeting": "Hola",
        "body": "{tenant} te ha invitado a unirte. Acepta la invitación para configurar tu cuenta.",
        "action": "Aceptar la invitación",
        "footer": "Si no esperabas este correo, puedes ignorarlo.",
    },
}

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("core", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
# C0 and C1 controls and the Unicode line separators: the email package
# refuses a header holding any line break, NEL (U+0085) and U+2028 included.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class MailError(BulkImportError):
    """Sending failed; ``permanent`` when retrying cannot help (a 5xx answer)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Invitation:
    """What one invitation e-mail says, and to whom."""

    invite_id: int
    email: str
    first_name: str
    last_name: str
    tenant_name: str
    language: str
    accept_url: str


def one_line(text: str) -> str:
    """Text safe for a header or a log line: control characters and line breaks become spaces."""
    return _CONTROL.sub(" ", text).strip()


def message_id(invite_id: int, mail_from: str) -> str:
    """A Message-ID that is the same for every attempt at one invite."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<invite-{invite_id}@{domain}>"


def compose(invitation: Invitation, mail_from: str) -> EmailMessage:
    """The invitation as a text + HTML e-mail; names cannot inject headers or markup."""
    language = invitation.language if invitation.language in LANGUAGES else "en"
    tenant = one_line(invitation.tenant_name)
    strings = {key: value.format(tenant=tenant) for key, value in STRINGS[language].items()}
    context: dict[str, Any] = {
        "t": strings,
        "first_name": one_line(invitation.first_name),
        "accept_url": invitation.accept_url,
        "language": language,
    }
    message = EmailMessage()
    message["Subject"] = strings["subject"]
    message["From"] = mail_from
    display_name = one_line(f"{invitation.first_name} {invitation.last_name}")
    message["To"] = Address(display_name=display_name, addr_spec=invitation.email)
    message["Message-ID"] = message_id(invitation.invite_id, mail_from)
    message["Content-Language"] = language
    message.set_content(_TEMPLATES.get_template("invite.txt").render(context))
    message.add_alternative(_TEMPLATES.get_template("invite.html").render(context), subtype="html")
    return message


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect, parsed from ``SMTP_URL``."""

    hostname: str
    port: int
    use_tls: bool
    start_tls: bool | None
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URLs."""
        parts = urllib.parse.urlsplit(url)
        schemes = {
            "smtp": (False, None, 25),
            "smtp+starttls": (False, True, 587),
            "smtps": (True, False, 465),
        }
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigurationError(
                "SMTP_URL must look like smtp://host:port, smtp+starttls://host:port or smtps://host:port"
            )
        use_tls, start_tls, default_port = schemes[parts.scheme]
        return cls(
            hostname=parts.hostname,
            port=parts.port or default_port,
            use_tls=use_tls,
            start_tls=start_tls,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )


class Mailer:
    """Sends messages over at most ``max_connections`` reused SMTP connections."""

    def __init__(self, settings: SmtpSettings, *, timeout: float = 30.0, max_connections: int = 4) -> None:
        self.settings = settings
        self.timeout = timeout
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.hostname,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=s.start_tls,
            username=s.username,
            password=s.password,
            timeout=self.timeout,
        )
        await client.connect()
        return client

    async def send(self, message: EmailMessage) -> str:
        """Send ``message``; return the server's answer. Raises MailError."""
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                _, response = await client.send_message(message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                await _close(client)
                refusal = exc.recipients[0]
                raise MailError(f"{refusal.code} {refusal.message}", permanent=refusal.code >= 500) from None
            except aiosmtplib.SMTPResponseException as exc:
                await _close(client)
                raise MailError(f"{exc.code} {exc.message}", permanent=exc.code >= 500) from None
            except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
                await _close(client)
                raise MailError(f"the mail server could not be reached: {exc}", permanent=False) from None
            self._idle.append(client)
            return response

    async def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            await _close(self._idle.pop())


async def _close(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        if client.is_connected:
            await client.quit()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        client.close()
