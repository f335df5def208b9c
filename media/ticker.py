"""The media thread: one thread per process that runs the 20 ms tick of
every room (decode the publishers' input, mix, encode) off the event loop.

The loop serves Socket.IO, the shop and every listener's send; before, the
tick ran there too, and three speakers mixed for 500 listeners held it long
enough to push the tick itself 200+ ms late. Here the thread does the
tick's work (PyAV releases the GIL inside its codecs) and hands each tick's
packets back to the loop in one batch (`call_soon_threadsafe`), where they
go to the feeds' outlets and taps as before: taps still run on the loop.

A room being ticked takes its own lock for the tick (`Tickable.lock`), so
the loop's membership changes never meet a tick halfway.
Must not import aiortc, aiohttp or `server/`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Protocol

from media.mixer import Emission
from media.packets import FRAME_S

logger = logging.getLogger(__name__)

_LATE_RESYNC_S = 0.2


class Tickable(Protocol):
    """A room as the media thread sees it."""

    room: str

    def mix(self, tick_no: int) -> list[Emission]:
        """On the media thread: this tick's packets (takes the room's lock)."""
        ...

    def deliver(self, emissions: list[Emission]) -> None:
        """On the loop: push the tick's packets to the feeds."""
        ...


class MediaThread:
    """Ticks every registered room every 20 ms, on its own thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._rooms: dict[Tickable, None] = {}  # insertion-ordered set
        self._guard = threading.Lock()
        self._stopping = threading.Event()
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
            self._thread = threading.Thread(target=self._run, name="droproom-media", daemon=True)
            self._thread.start()

    def remove(self, room: Tickable) -> None:
        with self._guard:
            self._rooms.pop(room, None)

    def stop(self) -> None:
        """Ends the thread (a tick under way finishes first)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        start, tick_no = time.monotonic(), 0
        while not self._stopping.is_set():
            tick_no += 1
            delay = start + tick_no * FRAME_S - time.monotonic()
            if delay < -_LATE_RESYNC_S:
                logger.warning("media thread %.0f ms late, resyncing", -delay * 1e3)
                self.late += 1
                start = time.monotonic() - tick_no * FRAME_S
            elif delay > 0 and self._stopping.wait(delay):
                return
            if not self._tick(tick_no):
                return

    def _tick(self, tick_no: int) -> bool:
        with self._guard:
            rooms = list(self._rooms)
        batch = []
        for room in rooms:
            try:
                batch.append((room, room.mix(tick_no)))
            except Exception:
                logger.exception("room %s: mixer tick failed", room.room)
        self.ticks += 1
        try:
            self._loop.call_soon_threadsafe(_deliver, batch)
        except RuntimeError:  # the loop is closed: nothing left to serve
            return False
        return True


def _deliver(batch: list[tuple[Tickable, list[Emission]]]) -> None:
    for room, emissions in batch:
        try:
            room.deliver(emissions)
        except Exception:
            logger.exception("room %s: delivering a tick failed", room.room)
