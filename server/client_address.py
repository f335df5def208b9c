"""Who is calling, by network address: the peer, or, when the peer is one of
the configured trusted proxies (`DROPROOM_TRUSTED_PROXIES`, addresses or
CIDRs), the address that proxy saw (`X-Forwarded-For`).

The header is read from the right: every hop that is itself a trusted proxy
is skipped and the first address that is not is the client (entries further
left were written by the client and prove nothing). With no trusted proxies
(the default) the header is never read. Every per-address limit (guest
tokens, failed admin keys, sign-in) asks here.
"""

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from server.appkeys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies", tuple)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """The trusted proxies; a bad entry fails loudly at start-up."""
    try:
        return tuple(ipaddress.ip_network(v, strict=False) for v in values)
    except ValueError as exc:
        raise ValueError(f"DROPROOM_TRUSTED_PROXIES: {exc}") from exc


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(value: str, networks: tuple[Network, ...]) -> bool:
    ip = _ip(value)
    return ip is not None and any(ip in net for net in networks)


def resolve(peer: str | None, forwarded_for: list[str], networks: tuple[Network, ...]) -> str:
    """The client's address given the peer, the X-Forwarded-For values (in
    header order) and the trusted proxies."""
    address = peer or "unknown"
    if not networks or not _trusted(address, networks):
        return address
    hops = [h.strip() for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if _ip(hop) is None:
            return address  # a garbled header: the last proxy is all we know
        if not _trusted(hop, networks):
            return str(_ip(hop))
        address = hop
    return address


def client_address(request: web.Request) -> str:
    networks = request.app[TRUSTED]
    return resolve(request.remote, request.headers.getall("X-Forwarded-For", []), networks)


def setup(app: web.Application) -> None:
    app[TRUSTED] = parse_networks(app[SETTINGS].trusted_proxies)
