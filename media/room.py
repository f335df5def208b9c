"""One room's live audio: its publishers, its feeds, the 20 ms tick, the
level reports and the recording of the live session.

The engine creates a `RoomMedia` when the first session of a room opens and
closes it when the last one goes. Its tick runs on the process's media
thread (media.ticker) when given one: `mix` (decode, mix, encode) and
`send` (stamp, write the listeners' RTP wires) there, under the room's
lock; `deliver` back on the loop (other outlets, taps, tone end, level
reports). The forward path's packets are queued to that thread too, so
each wire has one writer. Without one it runs in a task on the loop (the
old path, kept as the benchmarks' baseline). Must not import aiohttp or
`server/`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from media.fanout import Feed, Outlet
from media.ingest import Publisher
from media.mixer import Emission, Mixer
from media.packets import FRAME_S, SharedPacket
from media.recording import Recorder
from media.ticker import MediaThread
from media.tone import ToneVoice
from media.wire import Wire

logger = logging.getLogger(__name__)

# (room, {identity: level 0..1}) -> None, at most every level interval
LevelsCallback = Callable[[str, dict[str, float]], Awaitable[None]]
# (room, product id) -> None: the tone of that product played to its end
ToneEndCallback = Callable[[str, str], Awaitable[None]]
_SPEAKING_DBOV = -50.0
_LATE_RESYNC_S = 0.2


def level_share(dbov: float) -> float:
    """dBov mapped onto 0..1 (-60 dBov and below is 0), one decimal."""
    return round(min(1.0, max(0.0, (dbov + 60.0) / 60.0)), 1)


class RoomMedia:
    """The audio of one room, driven by its own tick task."""

    def __init__(
        self,
        room: str,
        *,
        input_frames: int,
        queue_size: int,
        record_root: Path | None,
        level_interval_s: float,
        on_levels: LevelsCallback | None = None,
        on_tone_end: ToneEndCallback | None = None,
        ticker: MediaThread | None = None,
    ) -> None:
        self.room = room
        # Held by the tick (maybe on the media thread) and by every change
        # of what it reads: publishers, feeds, the tone.
        self.lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self.clock = self._loop.time
        self.publishers: dict[str, Publisher] = {}
        self.feeds: dict[str | None, Feed] = {None: Feed(None, self.clock)}
        self.listeners: dict[str, tuple[str, Outlet]] = {}
        self.mixer = Mixer(room, self.publishers, self.feeds, self.clock)
        self._input_frames = input_frames
        self._queue_size = queue_size
        self._record_root = record_root
        self.recorder: Recorder | None = None
        self._level_interval = level_interval_s
        self._on_levels = on_levels
        self._last_levels: dict[str, float] = {}
        self._level_task: asyncio.Task[None] | None = None
        self._on_tone_end = on_tone_end
        self._tone_tasks: set[asyncio.Task[None]] = set()
        self._next_report = self.clock() + level_interval_s
        self._closed = False
        self._ticker = ticker
        self._task: asyncio.Task[None] | None = None
        self._forwards: deque[list[Emission]] = deque()
        if ticker is not None:
            self.mixer.forward = self.hand_over
            ticker.add(self)
        else:
            self._task = asyncio.create_task(self._run(), name=f"room-media:{room}")

    # --- membership -------------------------------------------------------
    def add_publisher(self, identity: str, session_id: str) -> Publisher:
        publisher = Publisher(
            self.room, identity, session_id, self.mixer.on_packet, self.clock, self._input_frames
        )
        with self.lock:
            self.publishers[identity] = publisher
            self._regroup()
        if self.recorder is None and self._record_root is not None:
            self._start_recording()
        return publisher

    def remove_publisher(self, identity: str, session_id: str) -> None:
        current = self.publishers.get(identity)
        if current is None or current.session_id != session_id:
            return
        with self.lock:
            del self.publishers[identity]
            self._regroup()
        if not self.publishers:
            self._stop_recording()

    def add_listener(self, session_id: str, identity: str, wire: Wire) -> Outlet:
        outlet = Outlet(wire, self._queue_size)
        self.listeners[session_id] = (identity, outlet)
        with self.lock:
            self._feed_for(identity).attach(outlet)
        return outlet

    def remove_listener(self, session_id: str) -> None:
        entry = self.listeners.pop(session_id, None)
        if entry is not None:
            with self.lock:
                for feed in self.feeds.values():
                    feed.detach(entry[1])
                self._regroup()

    def set_muted(self, identity: str, muted: bool) -> bool:
        publisher = self.publishers.get(identity)
        if publisher is None:
            return False
        publisher.muted = muted
        return True

    def is_empty(self) -> bool:
        return not self.publishers and not self.listeners and self.mixer.tone is None

    # --- tones ------------------------------------------------------------
    def play_tone(self, voice: ToneVoice) -> None:
        """Into the mix from the next tick on, replacing a tone still playing."""
        with self.lock:
            self.mixer.tone = voice

    def stop_tone(self) -> bool:
        with self.lock:
            playing, self.mixer.tone = self.mixer.tone, None
        return playing is not None

    def _tell_tone_ended(self) -> None:
        with self.lock:
            ended, self.mixer.tone_ended = self.mixer.tone_ended, None
        if ended is None or self._on_tone_end is None:
            return
        task = asyncio.create_task(self._send_tone_end(ended.product_id))
        self._tone_tasks.add(task)
        task.add_done_callback(self._tone_tasks.discard)

    async def _send_tone_end(self, product_id: str) -> None:
        assert self._on_tone_end is not None
        try:
            await self._on_tone_end(self.room, product_id)
        except Exception:
            logger.exception("room %s: the tone's end could not be told", self.room)

    def speaking(self) -> dict[str, float]:
        return dict(self._last_levels)

    # --- feeds ------------------------------------------------------------
    def _feed_for(self, identity: str) -> Feed:
        if identity not in self.publishers:
            return self.feeds[None]
        feed = self.feeds.get(identity)
        if feed is None:
            feed = self.feeds[identity] = Feed(identity, self.clock)
        return feed

    def _regroup(self) -> None:
        """Speakers hear the mix minus themselves; everyone else the room feed."""
        for identity, outlet in self.listeners.values():
            target = self._feed_for(identity)
            if outlet not in target.outlets:
                for feed in self.feeds.values():
                    feed.detach(outlet)
                target.attach(outlet)
        for excluded in [e for e, f in self.feeds.items() if e is not None and not f.outlets]:
            del self.feeds[excluded]

    # --- recording --------------------------------------------------------
    def _start_recording(self) -> None:
        assert self._record_root is not None
        try:
            self.recorder = Recorder(self._record_root, self.room)
        except (OSError, ValueError):
            logger.exception("room %s: cannot start recording", self.room)
            return
        self.feeds[None].taps.append(self.recorder.write)

    def _stop_recording(self) -> None:
        if self.recorder is not None:
            self.feeds[None].taps.remove(self.recorder.write)
            self.recorder.close()
            self.recorder = None

    # --- the tick ---------------------------------------------------------
    def mix(self, tick_no: int) -> list[Emission]:
        """Decode, mix, encode (on the media thread, or in `_run`)."""
        with self.lock:
            return self.mixer.tick(tick_no)

    def take_forwards(self) -> list[Emission]:
        """On the media thread: what the forward path queued since last time."""
        out: list[Emission] = []
        queue = self._forwards
        while queue:
            out.extend(queue.popleft())
        return out

    def send(self, emissions: list[Emission]) -> list[tuple[Feed, SharedPacket]]:
        """On the media thread: stamp each packet, write the outlets that may
        be written there (the listeners' RTP wires); the rest is `deliver`'s."""
        sent = []
        with self.lock:
            for feed, payload, source, ts, made in emissions:
                packet = feed.stamp(payload, source, ts, made)
                feed.offer_off_loop(packet)
                sent.append((feed, packet))
        return sent

    def deliver(self, sent: list[tuple[Feed, SharedPacket]]) -> None:
        """On the loop: the other outlets and the taps, then the tick's news."""
        if self._closed:
            return
        for feed, packet in sent:
            feed.finish(packet)
        self._after_tick()

    def hand_over(self, emissions: list[Emission]) -> None:
        """From the loop: packets for this room's feeds made outside the tick
        (the forward path, a relay). With a media thread they are queued to it
        and it is woken, so every wire keeps one writer; without, pushed here."""
        if self._ticker is None:
            for feed, payload, source, ts, made in emissions:
                feed.push(payload, source, ts, made)
            return
        self._forwards.append(emissions)
        self._ticker.wake()

    def _after_tick(self) -> None:
        if self.mixer.tone_ended is not None:
            self._tell_tone_ended()
        if self.clock() >= self._next_report:
            self._next_report += self._level_interval
            self._report_levels()

    async def _run(self) -> None:
        """The tick as a task on the loop (no media thread)."""
        start = self.clock()
        tick_no = 0
        while True:
            tick_no += 1
            due = start + tick_no * FRAME_S
            delay = due - self.clock()
            if delay < -_LATE_RESYNC_S:
                logger.warning("room %s: mixer %.0f ms late, resyncing", self.room, -delay * 1e3)
                start, tick_no = self.clock(), 0
                continue
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                for feed, payload, source, ts, made in self.mix(tick_no):
                    feed.push(payload, source, ts, made)
            except Exception:
                logger.exception("room %s: mixer tick failed", self.room)
            self._after_tick()

    def _report_levels(self) -> None:
        levels = {}
        for identity, publisher in list(self.publishers.items()):
            with self.lock:
                peak = publisher.take_peak()
            if not publisher.muted and peak > _SPEAKING_DBOV:
                levels[identity] = level_share(peak)
        if levels == self._last_levels:
            return
        if self._level_task is not None and not self._level_task.done():
            return  # the previous report is still out: coalesce into the next one
        self._last_levels = levels
        if self._on_levels is not None:
            self._level_task = asyncio.create_task(self._send_levels(dict(levels)))

    async def _send_levels(self, levels: dict[str, float]) -> None:
        assert self._on_levels is not None
        try:
            await self._on_levels(self.room, levels)
        except Exception:
            logger.exception("room %s: level report failed", self.room)

    async def aclose(self) -> None:
        self._closed = True
        if self._ticker is not None:
            self._ticker.remove(self)
        current = asyncio.current_task()
        tone_tasks = [t for t in self._tone_tasks if t is not current]
        for task in (self._task, self._level_task, *tone_tasks):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._task = self._level_task = None
        self._stop_recording()
        with self.lock:  # a tick under way on the media thread finishes first
            self.publishers.clear()
        self.listeners.clear()
