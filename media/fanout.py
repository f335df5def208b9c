"""Fan-out: one feed of shared packets to many listeners.

A `Feed` is what one group of listeners hears (the room's mix, or the mix
minus one speaker). It stamps packets onto one continuous timeline and hands
the same `SharedPacket` to every `Outlet`. Each outlet keeps a small queue
that drops its oldest packet, so one slow listener never holds up the others.
Must not import aiortc, aiohttp or `server/`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from media.packets import FRAME_SAMPLES, SAMPLE_RATE, SharedPacket
from media.wire import Wire

logger = logging.getLogger(__name__)


class Outlet:
    """One listener's end of a feed: a bounded queue in front of its wire."""

    __slots__ = ("dropped", "off_loop", "queue", "wire")

    def __init__(self, wire: Wire, size: int) -> None:
        self.wire = wire
        self.queue: deque[SharedPacket] = deque(maxlen=size)
        self.dropped = 0
        # Written on the media thread (media.ticker) if its wire allows it.
        self.off_loop = bool(getattr(wire, "off_loop", False))

    def offer(self, packet: SharedPacket) -> None:
        queue = self.queue
        if not queue and self.wire.writable():
            self.wire.write(packet)
            return
        if len(queue) == queue.maxlen:
            self.dropped += 1
        queue.append(packet)
        self.flush()

    def flush(self) -> None:
        queue, wire = self.queue, self.wire
        while queue and wire.writable():
            wire.write(queue.popleft())


class Timeline:
    """Keeps a feed's RTP timestamps continuous across its sources.

    A source (a forwarded publisher, or the mixer's tick) has its own clock;
    when the source changes the offset is re-anchored so timestamps never go
    backwards and follow the wall clock.
    """

    def __init__(self, now: float) -> None:
        self._t0 = now
        self._source: object = None
        self._offset = 0
        self._last = -FRAME_SAMPLES

    def stamp(self, source: object, source_ts: int, now: float) -> int:
        if source is not self._source:
            wall = int((now - self._t0) * SAMPLE_RATE)
            self._offset = max(self._last + FRAME_SAMPLES, wall) - source_ts
            self._source = source
        ts = source_ts + self._offset
        if ts > self._last:
            self._last = ts
        return ts


class Feed:
    """What one audience hears; `excluded` is the speaker left out (or None)."""

    def __init__(self, excluded: str | None, clock: Callable[[], float]) -> None:
        self.excluded = excluded
        self._clock = clock
        self.timeline = Timeline(clock())
        self.outlets: set[Outlet] = set()
        self.sent = 0
        # Who else gets every packet of this feed (the recorder, the relay to
        # edges, HLS): each is called on the tick, so it must only hand off.
        self.taps: list[Callable[[SharedPacket], None]] = []

    def push(self, payload: bytes, source: object, source_ts: int, sent_at: float) -> None:
        """The whole path on the calling thread: stamp, every outlet, taps.
        For a feed the media thread also writes (a room's feed with a
        ticker), use `stamp` + `offer_off_loop` there and `finish` here."""
        packet = self.stamp(payload, source, source_ts, sent_at)
        self._offer(packet, None)
        self.finish(packet, all_outlets=False)

    def stamp(self, payload: bytes, source: object, source_ts: int, sent_at: float) -> SharedPacket:
        ts = self.timeline.stamp(source, source_ts, self._clock())
        return SharedPacket(payload, ts, sent_at)

    def offer_off_loop(self, packet: SharedPacket) -> None:
        """On the media thread: the outlets whose wires may be written there."""
        self._offer(packet, True)

    def finish(self, packet: SharedPacket, all_outlets: bool = True) -> None:
        """On the loop: the outlets that must be written there, then taps."""
        if all_outlets:
            self._offer(packet, False)
        self.sent += 1
        for tap in self.taps:
            try:
                tap(packet)
            except Exception:  # a broken tap must not stop the feed
                logger.exception("feed %s: a tap failed", self.excluded)

    def _offer(self, packet: SharedPacket, off_loop: bool | None) -> None:
        for outlet in self.outlets:
            if off_loop is not None and outlet.off_loop is not off_loop:
                continue
            try:
                outlet.offer(packet)
            except Exception:  # one broken listener must not stop the others
                logger.exception("feed %s: an outlet failed", self.excluded)
                outlet.queue.clear()

    def attach(self, outlet: Outlet) -> None:
        self.outlets.add(outlet)

    def detach(self, outlet: Outlet) -> None:
        self.outlets.discard(outlet)
