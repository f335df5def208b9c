"""One webhook delivery over HTTP, guarded against SSRF.

The target's host is resolved at every delivery; every address it resolves
to must pass accounts.hook_guard (unless `DROPROOM_WEBHOOK_ALLOW_PRIVATE`),
and the connection goes to the address that was checked: aiohttp gets a
resolver that knows only that address, so a second lookup (DNS rebinding)
cannot swap it. The delivery log says why a target was refused but not
the address its name resolved to. The Host header and TLS (SNI, certificate) still use the
name. No redirect is followed (a 3xx is a failure), the whole delivery has
TIMEOUT_S, and only a 2xx counts as delivered.
"""

import asyncio
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from accounts.hook_guard import IPAddress, literal, refusal

logger = logging.getLogger(__name__)

USER_AGENT = "droproom-webhooks/1"


class Refused(Exception):
    """The target resolves to an address webhooks may not reach."""


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None


class PinnedResolver(AbstractResolver):
    """Answers the one vetted address for the one host, and nothing else."""

    def __init__(self, host: str, address: IPAddress) -> None:
        self.host = host
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self.host:
            raise OSError(f"{host} was not vetted")
        fam = socket.AF_INET6 if self.address.version == 6 else socket.AF_INET
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        found = ResolveResult(
            hostname=host, host=str(self.address), port=port, family=fam, proto=0, flags=flags
        )
        return [found]

    async def close(self) -> None:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` has now (the literal itself when it is one)."""
    ip = literal(host)
    if ip is not None:
        return [ip]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _, _, _, _, sockaddr in infos:
        address = literal(str(sockaddr[0]).split("%")[0])
        if address is not None and address not in found:
            found.append(address)
    return found


async def vetted(host: str, port: int, allow_private: bool) -> IPAddress:
    """The address to connect to: all of the host's must be allowed."""
    addresses = await resolve(host, port)
    if not addresses:
        raise Refused(f"{host} has no address")
    for address in addresses if not allow_private else ():
        why = refusal(address)
        if why is not None:
            # The owner reads the log: it says what kind, never the address
            # (which would map our internal names for them).
            logger.warning("webhook target %s resolves to %s (%s): refused", host, address, why)
            raise Refused(f"refused: {host} resolves to a {why.split(' (')[0]} address")
    return addresses[0]


async def _post(url: str, body: str, headers: dict[str, str], allow_private: bool) -> Outcome:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = await vetted(host, port, allow_private)
    connector = aiohttp.TCPConnector(
        resolver=PinnedResolver(host, address), use_dns_cache=False, force_close=True
    )
    async with (
        aiohttp.ClientSession(connector=connector, headers={"user-agent": USER_AGENT}) as http,
        http.post(url, data=body.encode(), headers=headers, allow_redirects=False) as resp,
    ):
        if 200 <= resp.status < 300:
            return Outcome(True, resp.status)
        why = " (redirects are not followed)" if 300 <= resp.status < 400 else ""
        return Outcome(False, resp.status, f"answered {resp.status}{why}")


async def post(
    url: str, body: str, headers: dict[str, str], allow_private: bool, timeout_s: float
) -> Outcome:
    """Deliver once; never raises (the outcome says what went wrong)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _post(url, body, headers, allow_private)
    except TimeoutError:
        return Outcome(False, error=f"no answer within {timeout_s:g} s")
    except Refused as exc:
        return Outcome(False, error=str(exc))
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:300])
