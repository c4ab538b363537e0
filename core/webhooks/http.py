"""One webhook attempt over HTTP: the receiver's address checked, a signed POST, the answer capped.

Safety first (SSRF): a URL must be ``https://`` and its host must resolve to
public addresses only (``core.addresses``, shared with the sources), checked
before each attempt, and the request goes to the very address checked (with
the URL's host in ``Host`` and in TLS's SNI, so the certificate is checked
against the name), so a DNS answer that
changes between the check and the connection cannot reach an internal
service. ``WEBHOOK_ALLOW_LOOPBACK=true`` lets ``http://`` and loopback
addresses through, for tests and local use; private, link-local (cloud
metadata at 169.254.169.254) and other non-public addresses never are.
Redirects are not followed; the answer is read up to ``MAX_RESPONSE_BYTES``.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass

import httpx

from core.addresses import AddressRule, public_address
from core.errors import WebhookRefused

MAX_RESPONSE_BYTES = 4096
# The part of a failing receiver's answer kept as the delivery's last error.
ERROR_EXCERPT_CHARS = 200
WEBHOOK_ADDRESSES = AddressRule(
    WebhookRefused, "webhooks go to public addresses only", "WEBHOOK_ALLOW_LOOPBACK"
)
_LOOPBACK_HINT = WEBHOOK_ADDRESSES.loopback_hint


@dataclass(frozen=True)
class Attempt:
    """What one attempt got: the HTTP status (None when none came) and, unless 2xx, why it failed."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """A 2xx answer: the receiver has the event."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver wants no more events at this URL."""
        return self.status == 410


def check_url(url: str, allow_loopback: bool) -> urllib.parse.SplitResult:
    """The URL split, if its form may be called; else ``WebhookRefused`` saying why."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise WebhookRefused(f"{url!r} is not a URL a webhook can go to: write https://host/path")
    if parts.scheme == "http" and not allow_loopback:
        raise WebhookRefused(f"{url!r} is plain http: webhook URLs must be https:// ({_LOOPBACK_HINT})")
    if parts.username or parts.password:
        raise WebhookRefused(f"{url!r} carries credentials: the signature authenticates the sender")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise WebhookRefused(f"{url!r} has an invalid port") from None
    return parts


async def safe_address(url: str, allow_loopback: bool) -> str:
    """Resolve the URL's host and check every address it has (``core.addresses``); return the one
    to connect to."""
    parts = check_url(url, allow_loopback)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return await public_address(parts.hostname or "", port, allow_loopback, WEBHOOK_ADDRESSES)


async def post(
    url: str, body: bytes, headers: dict[str, str], timeout_s: float, allow_loopback: bool
) -> Attempt:
    """POST ``body`` to ``url`` once, within ``timeout_s`` in all; never raises for the receiver's sake."""
    try:
        async with asyncio.timeout(timeout_s):
            address = await safe_address(url, allow_loopback)
            return await _post_to(address, url, body, headers, timeout_s)
    except WebhookRefused as exc:
        return Attempt(None, str(exc))
    except TimeoutError:
        return Attempt(None, f"no answer within {timeout_s:g} s (WEBHOOK_TIMEOUT_S)")
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT_CHARS] or type(exc).__name__)
    except OSError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:ERROR_EXCERPT_CHARS])


async def _post_to(address: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Attempt:
    target = httpx.URL(url)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    request_headers = {
        **headers,
        "content-type": "application/json",
        "user-agent": "bulk-import-webhooks/1",
        "host": target.netloc.decode("ascii"),
    }
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=timeout_s) as client:
        request = client.build_request(
            "POST",
            target.copy_with(host=address),
            content=body,
            headers=request_headers,
            extensions=extensions,
        )
        response = await client.send(request, stream=True)
        try:
            excerpt = await _read_capped(response)
        finally:
            await response.aclose()
    status = response.status_code
    if 200 <= status < 300:
        return Attempt(status)
    if 300 <= status < 400:
        where = response.headers.get("location", "")
        return Attempt(
            status, f"HTTP {status}: redirects are not followed (to {where[:100]!r}); register the final URL"
        )
    return Attempt(status, f"HTTP {status}: {excerpt}".strip()[:ERROR_EXCERPT_CHARS])


async def _read_capped(response: httpx.Response) -> str:
    """At most ``MAX_RESPONSE_BYTES`` of the answer, as text."""
    read = b""
    async for chunk in response.aiter_raw():
        read += chunk
        if len(read) >= MAX_RESPONSE_BYTES:
            break
    return read[:MAX_RESPONSE_BYTES].decode("utf-8", "replace")
