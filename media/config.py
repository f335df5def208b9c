"""Media settings: the values the audio engine needs, frozen and validated.

Owns `MediaConfig` and `IceServer`. Built by `server/` from its settings;
must not import aiohttp, socketio or anything of `server/`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media.caps import Limits


@dataclass(frozen=True, slots=True)
class IceServer:
    """One STUN or TURN server, as given to clients and to aiortc."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("an ICE server needs at least one url")
        for url in self.urls:
            if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
                raise ValueError(f"not a STUN/TURN url: {url!r}")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> IceServer:
        urls = raw.get("urls")
        url_tuple = (urls,) if isinstance(urls, str) else tuple(urls or ())
        return cls(url_tuple, raw.get("username"), raw.get("credential"))


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """How the engine offers ICE, where it records, and its time limits."""

    data_dir: Path
    ice_hosts: tuple[str, ...] = ()
    ice_public_ip: str | None = None
    ice_servers: tuple[IceServer, ...] = ()
    # A publisher that sends no RTP for this long is dropped (FFmpeg never
    # answers consent checks, so RTP is the only sign of life we trust).
    inactivity_timeout_s: float = 10.0
    # A session whose peer never connects is dropped after this long.
    connect_timeout_s: float = 20.0
    # Packets waiting for one listener; the oldest goes first when full.
    listener_queue: int = 4
    # Decoded audio kept per publisher before the mixer drops the oldest.
    input_frames: int = 3
    level_interval_s: float = 0.25
    # WHEP sessions held at once per identity, room and process (see caps).
    listen_limits: Limits = field(default_factory=Limits)
    record: bool = True
    # offloop: the rooms' ticks (decode, mix, encode) on one media thread
    # per process; False keeps them on the event loop (benchmarks' baseline).
    media_thread: bool = True

    def __post_init__(self) -> None:
        if self.inactivity_timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.listener_queue < 1 or self.input_frames < 1:
            raise ValueError("queues hold at least one item")

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @staticmethod
    def servers_from(raw: Iterable[Mapping[str, Any]]) -> tuple[IceServer, ...]:
        return tuple(IceServer.from_mapping(item) for item in raw)
