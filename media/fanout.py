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

    __slots__ = ("dropped", "queue", "wire")

    def __init__(self, wire: Wire, size: int) -> None:
        self.wire = wire
        self.queue: deque[SharedPacket] = deque(maxlen=size)
        self.dropped = 0

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
        now = self._clock()
        ts = self.timeline.stamp(source, source_ts, now)
        packet = SharedPacket(payload, ts, sent_at)
        for outlet in self.outlets:
            try:
                outlet.offer(packet)
            except Exception:  # one broken listener must not stop the others
                logger.exception("feed %s: an outlet failed", self.excluded)
                outlet.queue.clear()
        self.sent += 1
        for tap in self.taps:
            try:
                tap(packet)
            except Exception:  # a broken tap must not stop the feed
                logger.exception("feed %s: a tap failed", self.excluded)

    def attach(self, outlet: Outlet) -> None:
        self.outlets.add(outlet)

    def detach(self, outlet: Outlet) -> None:
        self.outlets.discard(outlet)
