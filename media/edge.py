"""An edge room: a room's audio heard in a process that does not own it.

The owner of a room's media (the holder of its media lease,
rooms/media_lease.py) encodes the room feed once and relays every packet;
an edge process hands each one to its own listeners of the room through a
`Feed`, as the owner does (same outlets, timeline and wire). The relay
itself (Redis) is server/audio/edges.py; this module only fences and feeds.

Fencing: every packet carries the fencing token of the lease its sender
held. A packet whose token is lower than the highest seen, or than the
lease's current token (`lease_token`, kept fresh by the caller), comes from
an owner that lost the room: it is dropped, so a stale owner cannot feed
edges. A higher token is a new owner: the timeline re-anchors on it.
Must not import aiohttp or `server/`.
"""

from __future__ import annotations

from collections.abc import Callable

from media.fanout import Feed, Outlet
from media.wire import Wire


class EdgeRoom:
    """This process's listeners of one room fed by the owner's packets."""

    def __init__(self, room: str, clock: Callable[[], float], queue_size: int) -> None:
        self.room = room
        self.clock = clock
        self.feed = Feed(None, clock)
        self.listeners: dict[str, Outlet] = {}
        self._queue_size = queue_size
        self.highest = 0  # the highest fencing token heard
        self.lease_token = 0  # the lease's token when last read
        self._source: object = None  # one timeline source per owner
        self._next_seq: int | None = None
        self.received = 0
        self.stale = 0  # packets of an owner that lost the room, dropped
        self.lost = 0  # packets the owner sent that never arrived
        self.last_at: float | None = None  # when the last packet was fed

    @property
    def floor(self) -> int:
        """The lowest token still heard."""
        return max(self.highest, self.lease_token)

    def refence(self, token: int) -> None:
        """The lease's fence went back (its counter was lost): hear from
        `token` on, re-anchoring on the next packet."""
        self.highest = self.lease_token = token
        self._source = None
        self._next_seq = None

    def add_listener(self, session_id: str, wire: Wire) -> Outlet:
        outlet = Outlet(wire, self._queue_size)
        self.listeners[session_id] = outlet
        self.feed.attach(outlet)
        return outlet

    def remove_listener(self, session_id: str) -> None:
        outlet = self.listeners.pop(session_id, None)
        if outlet is not None:
            self.feed.detach(outlet)

    def is_empty(self) -> bool:
        return not self.listeners

    def receive(self, token: int, seq: int, payload: bytes, timestamp: int) -> bool:
        """One relayed packet; False when fenced off (a stale owner's)."""
        if token < self.floor:
            self.stale += 1
            return False
        if token > self.highest or self._source is None:
            self.highest = token
            self._source = object()
            self._next_seq = None
        if self._next_seq is not None and seq > self._next_seq:
            self.lost += seq - self._next_seq
        self._next_seq = seq + 1
        self.received += 1
        now = self.clock()
        self.last_at = now
        self.feed.push(payload, self._source, timestamp, now)
        return True
