"""Composing invitation e-mail: languages, escaping, headers, SMTP URLs."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigurationError
from core.mail import Invitation, SmtpSettings, compose, message_id

FROM = "Acme People <people@acme.example>"


def invitation(**changes: object) -> Invitation:
    fields: dict[str, object] = {
        "invite_id": 42,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "tenant_name": "Acme",
        "language": "en",
        "accept_url": "https://people.example.com/accept/TOKEN",
    }
    fields.update(changes)
    return Invitation(**fields)  # type: ignore[arg-type]


def parsed(inv: Invitation) -> email.message.EmailMessage:
    raw = compose(inv, FROM).as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.mark.parametrize(
    ("language", "subject", "action"),
    [
        ("en", "You're invited to join Acme", "Accept the invitation"),
        ("fr", "Vous êtes invité·e à rejoindre Acme", "Accepter l'invitation"),
        ("de", "Einladung zu Acme", "Einladung annehmen"),
        ("es", "Te han invitado a unirte a Acme", "Aceptar la invitación"),
        ("ja", "You're invited to join Acme", "Accept the invitation"),
    ],
)
def test_the_email_speaks_the_persons_language(language: str, subject: str, action: str) -> None:
    message = parsed(invitation(language=language))

    text, html = parts(message)
    assert message["Subject"] == subject
    assert action in text and "https://people.example.com/accept/TOKEN" in text
    assert "https://people.example.com/accept/TOKEN" in html


def test_names_cannot_inject_headers_or_markup() -> None:
    hostile = invitation(
        first_name="Eve\r\nBcc: victim@example.com",
        last_name="<script>alert(1)</script>",
        tenant_name="Acme\nX-Evil: 1",
    )

    message = parsed(hostile)

    text, html = parts(message)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "\n" not in message["Subject"] and "\n" not in str(message["To"])
    assert "<script>" not in html
    assert "&lt;script&gt;" not in html, "the last name is not in the body at all"
    assert "Eve Bcc: victim@example.com" in text
    assert message["To"].addresses[0].addr_spec == "ada@example.com"


def test_html_in_a_first_name_is_escaped() -> None:
    _, html = parts(parsed(invitation(first_name="<b>Bold</b> & co")))
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in html


def test_the_message_id_is_stable_per_invite() -> None:
    assert parsed(invitation())["Message-ID"] == message_id(42, FROM) == "<invite-42@acme.example>"
    assert message_id(43, FROM) != message_id(42, FROM)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, False, None, None, None)),
        (
            "smtp+starttls://u:p%40ss@mail.example.com:2525",
            ("mail.example.com", 2525, False, True, "u", "p@ss"),
        ),
        ("smtps://mail.example.com", ("mail.example.com", 465, True, False, None, None)),
    ],
)
def test_smtp_urls(url: str, expected: tuple[object, ...]) -> None:
    s = SmtpSettings.from_url(url)
    assert (s.hostname, s.port, s.use_tls, s.start_tls, s.username, s.password) == expected


def test_a_bad_smtp_url_is_named() -> None:
    with pytest.raises(ConfigurationError, match="SMTP_URL"):
        SmtpSettings.from_url("http://mail.example.com")


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(first=names, last=names, tenant=names)
def test_no_name_adds_a_header_an_address_or_markup(first: str, last: str, tenant: str) -> None:
    plain = parsed(invitation())
    message = parsed(invitation(first_name=first, last_name=last, tenant_name=tenant))

    assert sorted(message.keys()) == sorted(plain.keys())
    assert [a.addr_spec for a in message["To"].addresses] == ["ada@example.com"]
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    _, html = parts(message)
    _, plain_html = parts(plain)
    # Whatever the names hold, the HTML has the template's tags and no others.
    assert html.count("<") == plain_html.count("<")
