"""Fetching a source's file over HTTPS: the webhooks' address rules, a streamed GET.

https only. The host is resolved and checked before each fetch
(``core.addresses``: public addresses only, loopback with
``SOURCE_ALLOW_LOOPBACK``) and the request goes to the very address checked,
with the URL's host in ``Host`` and in TLS's SNI, so the certificate is
checked against the name and DNS cannot be used to reach an internal service.
The certificate is checked against the system's authorities, plus those of
``SOURCE_CA_BUNDLE`` when set (a test CA). Redirects are not followed (one
could point anywhere). The optional header (``Authorization: Bearer …``) is
sent as saved; the body streams to disk (decoded, if the server compressed it) within the size limit.

Failures: no answer, a 5xx or 404 (not dropped yet): ``FetchFailed``, retried;
401 or 403 (credentials), a redirect: ``SourceRefused``, not retried.
"""

from __future__ import annotations

import email.message
import posixpath
import ssl
import urllib.parse
from pathlib import Path

import httpx

from core.addresses import public_address
from core.errors import SourceRefused
from core.settings import Settings
from core.sources.fetched import Fetched, FetchFailed, Sink, too_large
from core.sources.locations import SOURCE_ADDRESSES, Location
from core.sources.vault import Secrets

USER_AGENT = "bulk-import-sources/1"
_REFUSED = (401, 403)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The system's authorities, and ``SOURCE_CA_BUNDLE``'s when set."""
    context = ssl.create_default_context()
    if settings.source_ca_bundle:
        context.load_verify_locations(cafile=settings.source_ca_bundle)
    return context


def _file_name(response: httpx.Response, location: Location) -> str:
    """The name the server gives the file (Content-Disposition), else the URL path's last part."""
    disposition = response.headers.get("content-disposition")
    if disposition:
        parsed = email.message.Message()
        parsed["content-disposition"] = disposition
        name = parsed.get_filename()
        if name:
            return posixpath.basename(name.replace("\\", "/")) or "download"
    return posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(location.url).path)) or "download"


async def fetch_https(
    location: Location,
    secrets: Secrets,
    header_name: str | None,
    folder: Path | None,
    settings: Settings,
) -> Fetched | None:
    """GET the URL into ``folder`` (None: only check that it answers 200, the connection test)."""
    address = await public_address(
        location.host, location.port, settings.source_allow_loopback, SOURCE_ADDRESSES
    )
    target = httpx.URL(location.url)
    headers = {"user-agent": USER_AGENT, "host": target.netloc.decode("ascii")}
    if header_name and secrets.header_value:
        headers[header_name] = secrets.header_value
    timeout = httpx.Timeout(settings.source_timeout_s)
    limit = settings.api_max_upload_bytes
    where = f"{location.host}:{location.port}"
    try:
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, timeout=timeout, verify=tls_context(settings)
        ) as client:
            request = client.build_request(
                "GET",
                target.copy_with(host=address),
                headers=headers,
                extensions={"sni_hostname": target.host},
            )
            response = await client.send(request, stream=True)
            try:
                _check_status(response, location)
                name = _file_name(response, location)
                length = int(response.headers.get("content-length") or 0)
                if length > limit:
                    raise too_large(name, limit)
                if folder is None:
                    return None
                with Sink(folder / "fetched", name, limit) as sink:
                    async for chunk in response.aiter_bytes():
                        sink.write(chunk)
            finally:
                await response.aclose()
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{where} could not be reached ({type(exc).__name__}: {exc})"[:300]) from None
    except (OSError, TimeoutError) as exc:
        raise FetchFailed(f"{where} could not be reached ({type(exc).__name__}: {exc})"[:300]) from None
    return sink.fetched()


def _check_status(response: httpx.Response, location: Location) -> None:
    status = response.status_code
    if status == 200:
        return
    if 300 <= status < 400:
        where = response.headers.get("location", "")[:100]
        raise SourceRefused(f"HTTP {status}: redirects are not followed (to {where!r}); save the final URL")
    if status in _REFUSED:
        raise SourceRefused(f"HTTP {status}: {location.host} refused the request: check the source's header")
    raise FetchFailed(f"HTTP {status} from {location.host}")
