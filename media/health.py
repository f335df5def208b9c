"""Audio health per room, as this process sees it: WHEP listener sessions
connected, and the share of packets their receivers report lost (RTCP
receiver reports, through aiortc's stats). Must not import
anything of ours but media/ and kernel/.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiortc.stats import RTCRemoteInboundRtpStreamStats

from media.session import Kind, Session


@dataclass(frozen=True, slots=True)
class AudioHealth:
    connected: int = 0
    reported: int = 0  # listeners whose receiver reports arrived
    loss: float = 0.0  # the sum of their last reported fraction lost (0..1 each)

    def __add__(self, other: AudioHealth) -> AudioHealth:
        return AudioHealth(
            self.connected + other.connected,
            self.reported + other.reported,
            self.loss + other.loss,
        )


async def session_health(session: Session) -> AudioHealth:
    """One listener: its last RTCP receiver report's fraction lost (the packets
    the room sends it go out on their own wire, media.wire, so the report is
    the loss figure; aiortc's sender keeps it)."""
    for stats in (await session.pc.getStats()).values():
        if isinstance(stats, RTCRemoteInboundRtpStreamStats):
            return AudioHealth(1, 1, stats.fractionLost / 256)
    return AudioHealth(1)


async def room_health(sessions: Iterable[Session]) -> dict[str, AudioHealth]:
    """Each room's health over its connected WHEP sessions."""
    found: dict[str, AudioHealth] = {}
    for s in sessions:
        if s.kind is Kind.LISTEN and s.connected_at is not None and not s.closed:
            found[s.room] = found.get(s.room, AudioHealth()) + await session_health(s)
    return found
