"""Which addresses the system connects to on a tenant's say-so: public ones only (SSRF).

A webhook's receiver (``core.webhooks.http``) and a source's server
(``core.sources``) are hosts a tenant names; connecting to whatever they
resolve to would let a tenant reach this network's own services (a database,
the cloud's metadata at 169.254.169.254). So the host is resolved, every
address it has must be public, and the caller connects to the very address
checked, so that a DNS answer changing between the check and the connection
cannot reach an internal service. Loopback is let in only when the caller's
setting says so (``WEBHOOK_ALLOW_LOOPBACK``, ``SOURCE_ALLOW_LOOPBACK``: for
tests and local use); private, link-local, unspecified and reserved
addresses never are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from core.errors import AddressRefused


@dataclass(frozen=True)
class AddressRule:
    """Who checks: the error it raises, what it says it connects to, the setting that allows loopback."""

    error: type[AddressRefused]
    only: str  # "webhooks go to public addresses only"
    setting: str  # "WEBHOOK_ALLOW_LOOPBACK"

    @property
    def loopback_hint(self) -> str:
        """How loopback is let in, for the messages."""
        return f"{self.setting}=true allows it, for tests and local use only"


def check_address(host: str, address: str, allow_loopback: bool, rule: AddressRule) -> None:
    """Refuse an address that is not public (loopback only when allowed), with ``rule``'s error."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        if allow_loopback:
            return
        kind = "a loopback address"
    elif ip.is_unspecified:
        kind = "the unspecified address (it reaches this machine)"
    elif ip.is_link_local:
        kind = "a link-local address (cloud metadata lives there)"
    elif ip.is_private:
        kind = "a private address"
    elif not ip.is_global or ip.is_multicast:
        kind = "not a public address"
    else:
        return
    hint = f" ({rule.loopback_hint})" if ip.is_loopback else ""
    raise rule.error(f"{host} resolves to {ip}, {kind}: {rule.only}{hint}")


async def public_address(host: str, port: int, allow_loopback: bool, rule: AddressRule) -> str:
    """Resolve ``host`` and check every address it has; return the one to connect to."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise rule.error(f"{host} does not resolve ({exc.strerror}): check the host name") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        check_address(host, address, allow_loopback, rule)
    return addresses[0]
