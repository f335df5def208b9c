"""Audio health per room, as this process sees it: WHEP listener sessions
connected, and the packets sent to them against those their receivers
report lost (RTCP receiver reports, through aiortc's stats). Must not import
anything of ours but media/ and kernel/.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiortc.stats import RTCOutboundRtpStreamStats, RTCRemoteInboundRtpStreamStats

from media.session import Kind, Session


@dataclass(frozen=True, slots=True)
class AudioHealth:
    connected: int = 0
    sent: int = 0  # RTP packets sent to the listeners
    lost: int = 0  # of those, what their receiver reports say was lost
    reported: bool = False  # at least one receiver report arrived

    def __add__(self, other: AudioHealth) -> AudioHealth:
        return AudioHealth(
            self.connected + other.connected,
            self.sent + other.sent,
            self.lost + other.lost,
            self.reported or other.reported,
        )


async def session_health(session: Session) -> AudioHealth:
    sent = lost = 0
    reported = False
    for stats in (await session.pc.getStats()).values():
        if isinstance(stats, RTCOutboundRtpStreamStats):
            sent += stats.packetsSent
        elif isinstance(stats, RTCRemoteInboundRtpStreamStats):
            lost += max(0, stats.packetsLost)
            reported = True
    return AudioHealth(1, sent, lost, reported)


async def room_health(sessions: Iterable[Session]) -> dict[str, AudioHealth]:
    """Each room's health over its connected WHEP sessions."""
    found: dict[str, AudioHealth] = {}
    for s in sessions:
        if s.kind is Kind.LISTEN and s.connected_at is not None and not s.closed:
            found[s.room] = found.get(s.room, AudioHealth()) + await session_health(s)
    return found
