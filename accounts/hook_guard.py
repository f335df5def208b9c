"""Which addresses a webhook may be delivered to: public unicast ones only.

A creator names the target, so a target on our own network (the metadata
service at 169.254.169.254, Redis on loopback, a private admin panel) would
let them make this server call it (SSRF). Refused: loopback, private
(RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), multicast,
unspecified, shared address space (CGNAT, 100.64/10), reserved and
documentation ranges, and any IPv6 address that embeds one of those
(IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`). Pure: standard library only.
"""

import ipaddress
import socket
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
COMPATIBLE: Final = ipaddress.ip_network("::/96")


def embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it carries one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or (ip in COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _kind(ip: IPAddress) -> str | None:
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.version == 4 and ip in CGNAT, "shared (CGNAT)"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not public"),
    )
    return next((kind for hit, kind in checks if hit), None)


def refusal(address: str | IPAddress) -> str | None:
    """Why a webhook may not go to `address` ("loopback", "private", ...),
    or None when it is a public unicast address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped"
        inner = embedded_v4(ip)
        if inner is not None:
            kind = _kind(inner)
            return f"{kind} (inside {ip})" if kind else None
    return _kind(ip)


def literal(host: str) -> IPAddress | None:
    """`host` as an IP address when it is one (brackets of a URL removed),
    including the IPv4 shorthands resolvers accept (`127.1`, `2130706433`,
    `0x7f.0.0.1`), which would otherwise pass for names."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if not host or host.strip("0123456789abcdefxABCDEFX.") or "." * 2 in host:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
