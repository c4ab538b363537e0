"""Signing (checked against the Standard Webhooks reference implementation), the receiver's
address rules and the retry schedule, without services."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from core.errors import WebhookRefused
from core.settings import Settings
from core.webhooks import deliveries, signing
from core.webhooks import http as webhook_http
from tests.support.receiver import verify


def test_the_signature_is_the_standard_webhooks_one() -> None:
    # The Standard Webhooks specification's own example (github.com/standard-webhooks).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'

    signed = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)

    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@given(body=st.binary(max_size=200), message_id=st.text(min_size=1, max_size=30).filter(str.isprintable))
def test_the_readmes_verification_accepts_each_secret_and_refuses_a_changed_body(
    body: bytes, message_id: str
) -> None:
    current, previous = signing.new_secret(), signing.new_secret()
    now = int(datetime.now(UTC).timestamp())

    headers = signing.headers([current, previous], message_id, now, body)

    assert verify(current, headers, body) and verify(previous, headers, body)
    text = body.decode("latin-1").encode()  # the reference implementation verifies text bodies
    reference = signing.headers([current, previous], message_id, now, text)
    assert Webhook(current).verify(text, reference, json_parse=False) is None
    assert Webhook(previous).verify(text, reference, json_parse=False) is None
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(text, reference, json_parse=False)
    assert not verify(signing.new_secret(), headers, body)
    assert not verify(current, headers, body + b" ")
    assert not verify(current, {**headers, "webhook-timestamp": str(now - 3600)}, body)


@pytest.mark.parametrize(
    ("url", "allow_loopback", "reason"),
    [
        ("http://example.com/hooks", False, "plain http"),
        ("http://169.254.169.254/latest/meta-data/", True, "link-local"),
        ("https://169.254.169.254/latest/meta-data/", False, "link-local"),
        ("https://localhost:8443/hooks", False, "loopback"),
        ("https://127.0.0.1/hooks", False, "loopback"),
        ("https://[::1]/hooks", False, "loopback"),
        ("https://10.1.2.3/hooks", True, "private"),
        ("https://192.168.0.10/hooks", True, "private"),
        ("https://[::ffff:10.0.0.1]/hooks", True, "private"),
        ("https://0.0.0.0/hooks", True, "unspecified"),
        ("https://[ff02::1]/hooks", True, "not a public address"),
        ("ftp://example.com/hooks", True, "not a URL a webhook can go to"),
        ("https://user:pw@example.com/hooks", False, "credentials"),
    ],
)
def test_a_receiver_that_is_not_public_is_refused_with_the_reason(
    url: str, allow_loopback: bool, reason: str
) -> None:
    with pytest.raises(WebhookRefused, match=reason):
        asyncio.run(webhook_http.safe_address(url, allow_loopback))


def test_loopback_passes_only_when_allowed() -> None:
    assert asyncio.run(webhook_http.safe_address("http://127.0.0.1:9/hooks", True)) == "127.0.0.1"


def test_the_default_schedule_retries_for_about_three_days() -> None:
    settings = Settings()
    start = now = datetime(2026, 1, 1, tzinfo=UTC)
    attempts = 1
    while (due := deliveries.next_attempt(attempts, start, now, settings)) is not None:
        assert due - now >= timedelta(milliseconds=settings.webhook_min_backoff_ms)
        now, attempts = due, attempts + 1

    assert timedelta(days=2, hours=18) <= now - start <= timedelta(days=3)
    assert 20 <= attempts <= 30
    assert deliveries.backoff(1, settings) == timedelta(seconds=5)
    assert deliveries.backoff(50, settings) == timedelta(hours=6)
