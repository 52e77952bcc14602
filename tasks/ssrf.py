"""The SSRF guard: outbound requests only reach public addresses, or allow-listed ones.

A host name is resolved once and every address it resolves to is checked; the
request is then sent to the checked address (so a DNS answer that changes
between check and connect cannot slip a private address in).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.errors import StepError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def refusal_reason(address: IPAddress) -> str | None:
    """Why this address may not be reached without an allow-list entry (None: it may)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal_reason(address.ipv4_mapped)
    if address in METADATA_ADDRESSES:
        return "cloud metadata address"
    checks = (
        (address.is_unspecified, "unspecified address"),
        (address.is_loopback, "loopback address"),
        (address.is_link_local, "link-local address"),
        (address.is_multicast, "multicast address"),
        (address.is_private, "private address"),
        (address.is_reserved, "reserved address"),
        (not address.is_global, "non-public address"),
    )
    for refused, reason in checks:
        if refused:
            return reason
    return None


def is_allowed(address: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    """The guard's decision for one address."""
    if any(address.version == net.version and address in net for net in allow):
        return True
    return refusal_reason(address) is None


@dataclass(frozen=True)
class Destination:
    host: str
    address: str
    port: int


def check_destination(host: str, port: int, allow: Sequence[IPNetwork]) -> Destination:
    """Resolve `host` and return an address that may be reached; StepError('ssrf') if none."""
    addresses = resolve(host, port)
    for address in addresses:
        if not is_allowed(address, allow):
            reason = refusal_reason(address) or "refused"
            # One refused address refuses the host: a round-robin answer must not
            # let every other request reach the internal one.
            raise StepError("ssrf", f"refusing to connect to {host} ({address}): {reason}")
    if not addresses:
        raise StepError("connection", f"{host} does not resolve")
    return Destination(host, str(addresses[0]), port)


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StepError("connection", f"cannot resolve {host}: {exc}") from exc
    seen: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in seen:
            seen.append(address)
    return seen
