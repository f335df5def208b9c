"""Audio packet values shared by the whole engine: one encoded Opus frame on
a feed's timeline, and the constants of 20 ms Opus at 48 kHz.

Pure values; must not import aiortc, aiohttp or `server/`.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
# A 20 ms CELT fullband frame of digital silence: what every listener gets
# when nobody speaks, so the stream stays valid without encoding anything.
OPUS_SILENCE = b"\xf8\xff\xfe"


@dataclass(frozen=True, slots=True)
class SharedPacket:
    """One Opus payload, made once and handed to every outlet of a feed.

    `timestamp` is on the feed's 48 kHz timeline; each outlet adds its own
    random origin and sequence number.
    """

    payload: bytes
    timestamp: int
    sent_at: float  # loop time when the packet left the mixer / arrived to forward
