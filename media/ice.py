"""ICE settings applied to aiortc peers: which host addresses to offer, the
public address to announce behind 1:1 NAT, STUN/TURN servers, consent.

Owns every reach into aioice's internals, so an aioice upgrade breaks here
and only here. Must not import aiohttp, socketio or `server/`.
"""

from __future__ import annotations

import logging
from typing import Any

from aioice import Candidate
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from media.config import IceServer, MediaConfig

logger = logging.getLogger(__name__)


def rtc_configuration(config: MediaConfig) -> RTCConfiguration:
    """Always explicit: left empty, aiortc would ask a public STUN server."""
    servers = [
        RTCIceServer(urls=list(s.urls), username=s.username, credential=s.credential)
        for s in config.ice_servers
    ]
    return RTCConfiguration(iceServers=servers)


def link_header(server: IceServer) -> str:
    """One `Link: <url>; rel="ice-server"` value per RFC 9725 section 4.6."""
    parts = []
    for url in server.urls:
        value = f'<{url}>; rel="ice-server"'
        if server.username is not None:
            value += f'; username="{server.username}"'
        if server.credential is not None:
            value += f'; credential="{server.credential}"; credential-type="password"'
        parts.append(value)
    return ", ".join(parts)


def _connections(pc: RTCPeerConnection) -> list[Any]:
    """The aioice connections behind a peer's transceivers (one with BUNDLE)."""
    seen: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        if transceiver.sender.transport is None:
            continue
        gatherer = transceiver.sender.transport.transport.iceGatherer
        seen[id(gatherer)] = gatherer._connection
    return list(seen.values())


async def pre_gather(pc: RTCPeerConnection, config: MediaConfig) -> None:
    """Gather candidates on the configured hosts before aiortc would.

    aioice skips 127.0.0.1 and offers every interface; we offer exactly
    `ice_hosts` (in order: FFmpeg only tries the first), then mark gathering
    done so aiortc's own gathering is a no-op. Call between
    setRemoteDescription and setLocalDescription.
    """
    if not config.ice_hosts and not config.ice_public_ip:
        return
    for conn in _connections(pc):
        if conn._local_candidates_start:
            continue
        conn._local_candidates_start = True
        addresses = list(config.ice_hosts) or _default_hosts(conn)
        found = await conn.get_component_candidates(component=1, addresses=addresses)
        conn._local_candidates = _announce_public(found, config.ice_public_ip)
        conn._local_candidates_end = True


def _default_hosts(conn: Any) -> list[str]:
    from aioice.ice import get_host_addresses

    return list(get_host_addresses(use_ipv4=conn._use_ipv4, use_ipv6=conn._use_ipv6))


def _announce_public(found: list[Candidate], public_ip: str | None) -> list[Candidate]:
    """Behind 1:1 NAT the public address (same port) goes first."""
    if not public_ip:
        return found
    hosts = [c for c in found if c.type == "host"]
    if not hosts:
        return found
    first = hosts[0]
    public = Candidate(
        foundation=first.foundation + "p",
        component=first.component,
        transport=first.transport,
        priority=first.priority + 1,
        host=public_ip,
        port=first.port,
        type="host",
    )
    return [public, *found]


def ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """Taken before a peer closes, for `forget_checks` after."""
    return _connections(pc)


def forget_checks(connections: list[Any]) -> None:
    """Drop a closed connection's check pairs: each holds its (cancelled)
    check task, whose frame holds the connection, a cycle that only a full
    garbage collection would free."""
    for conn in connections:
        for pair in conn._check_list:
            pair.task = None
        conn._check_list = []
        conn._nominated.clear()


def stop_consent_checks(pc: RTCPeerConnection, room: str) -> None:
    """Ingest sessions must not depend on consent: FFmpeg never answers it.

    A dead publisher is found by RTP inactivity instead (see `ingest`).
    """
    for conn in _connections(pc):
        task = conn._query_consent_task
        if task is not None and not task.done():
            task.cancel()
            logger.debug("room %s: consent checks off for an ingest session", room)
