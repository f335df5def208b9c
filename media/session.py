"""A WHIP or WHEP session: one peer connection in the registry, its kind,
owner and deadlines. Values and predicates only; the engine acts on them.
Must not import aiohttp or `server/`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from aiortc import RTCPeerConnection

from kernel.errors import Invalid

_ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Kind(StrEnum):
    PUBLISH = "publish"  # WHIP ingest
    LISTEN = "listen"  # WHEP playback


def new_session_id() -> str:
    """Unguessable: it is the capability in the session's `Location`."""
    return secrets.token_urlsafe(24)


def check_room_id(room: str) -> str:
    if not _ROOM_ID.match(room):
        raise Invalid("bad room id")
    return room


@dataclass(slots=True, eq=False)
class Session:
    id: str
    room: str
    identity: str
    kind: Kind
    pc: RTCPeerConnection
    created_at: float
    expires_at: float | None = None
    connected_at: float | None = None
    closed: bool = False
    reason: str = ""

    def is_expired(self, wall_now: float) -> bool:
        return self.expires_at is not None and wall_now >= self.expires_at

    def never_connected(self, now: float, timeout_s: float) -> bool:
        return self.connected_at is None and now - self.created_at > timeout_s
