"""The media thread: one thread per process that runs the 20 ms tick of
every room (decode the publishers' input, mix, encode) off the event loop.

The loop serves Socket.IO, the shop and every listener's send; before, the
tick ran there too, and three speakers mixed for 500 listeners held it long
enough to push the tick itself 200+ ms late. Here the thread does the
tick's work (PyAV releases the GIL inside its codecs) and the per-listener
send (libsrtp and `sendto` release it too): each packet is stamped and
written to the listeners' RTP wires here, then the tick's packets go back
to the loop in one batch (`call_soon_threadsafe`) for the taps (recorder,
relay, HLS) and any outlet whose wire must be written on the loop. A voice
forwarded unchanged is queued by the loop and sent here at once (`wake`),
so every wire has one writer.

A room being ticked takes its own lock for the tick (`Tickable.lock`), so
the loop's membership changes never meet a tick halfway.
Must not import aiortc, aiohttp or `server/`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Protocol

from media.fanout import Feed
from media.mixer import Emission
from media.packets import FRAME_S, SharedPacket

logger = logging.getLogger(__name__)

_LATE_RESYNC_S = 0.2
# The GIL's switch interval while a media thread runs (Python's default is
# 5 ms). The thread gives the GIL up at every codec call, libsrtp call and
# `sendto` (hundreds per tick); each time the loop holds it in Python code
# the thread waits up to this long to get it back. At 5 ms a busy loop
# (handshakes) made the tick fall 200-550 ms behind; at 1 ms it kept time
# (docs/benchmarks.md, "Audio off the event loop"). Process-wide.
SWITCH_INTERVAL_S = 0.001


class Tickable(Protocol):
    """A room as the media thread sees it."""

    room: str

    def mix(self, tick_no: int) -> list[Emission]:
        """On the media thread: this tick's packets (takes the room's lock)."""
        ...

    def take_forwards(self) -> list[Emission]:
        """On the media thread: packets the loop queued to forward."""
        ...

    def send(self, emissions: list[Emission]) -> list[tuple[Feed, SharedPacket]]:
        """On the media thread: stamp and write what may be written there."""
        ...

    def deliver(self, sent: list[tuple[Feed, SharedPacket]]) -> None:
        """On the loop: the rest of the outlets, the taps, the tick's news."""
        ...


Batch = list[tuple[Tickable, list[tuple[Feed, SharedPacket]]]]


class MediaThread:
    """Ticks every registered room every 20 ms, on its own thread, and
    sends forwarded packets as soon as the loop hands them over (`wake`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._rooms: dict[Tickable, None] = {}  # insertion-ordered set
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._woken = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.late = 0  # resyncs after falling behind

    @property
    def ident(self) -> int | None:
        """The thread's id while it runs (tests check where the tick runs)."""
        return self._thread.ident if self._thread is not None else None

    def add(self, room: Tickable) -> None:
        with self._guard:
            self._rooms[room] = None
        if self._thread is None:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
            self._thread = threading.Thread(target=self._run, name="droproom-media", daemon=True)
            self._thread.start()

    def remove(self, room: Tickable) -> None:
        with self._guard:
            self._rooms.pop(room, None)

    def wake(self) -> None:
        """From the loop: forwarded packets are waiting."""
        self._woken.set()

    def stop(self) -> None:
        """Ends the thread (a tick under way finishes first)."""
        self._stopping.set()
        self._woken.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        start, tick_no = time.monotonic(), 0
        while not self._stopping.is_set():
            due = start + (tick_no + 1) * FRAME_S
            delay = due - time.monotonic()
            if delay < -_LATE_RESYNC_S:
                logger.warning("media thread %.0f ms late, resyncing", -delay * 1e3)
                self.late += 1
                start = time.monotonic() - (tick_no + 1) * FRAME_S
            elif delay > 0:
                self._woken.wait(delay)
                self._woken.clear()  # before taking the queue: no wake-up is lost
                if self._stopping.is_set():
                    return
                if time.monotonic() < due:
                    if not self._pass(None):
                        return
                    continue
            tick_no += 1
            if not self._pass(tick_no):
                return

    def _pass(self, tick_no: int | None) -> bool:
        """Forwards, plus a tick's mix when `tick_no` is given; the batch goes
        back to the loop. False once the loop is gone."""
        with self._guard:
            rooms = list(self._rooms)
        batch: Batch = []
        for room in rooms:
            try:
                emissions = room.take_forwards()
                if tick_no is not None:
                    emissions += room.mix(tick_no)
                if emissions:
                    batch.append((room, room.send(emissions)))
            except Exception:
                logger.exception("room %s: mixer tick failed", room.room)
        if tick_no is not None:
            self.ticks += 1
        if not batch:
            return True
        try:
            self._loop.call_soon_threadsafe(_deliver, batch)
        except RuntimeError:  # the loop is closed: nothing left to serve
            return False
        return True


def _deliver(batch: Batch) -> None:
    for room, sent in batch:
        try:
            room.deliver(sent)
        except Exception:
            logger.exception("room %s: delivering a tick failed", room.room)
