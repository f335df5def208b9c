"""Recording: a room's live session written as Ogg/Opus, and the replay list.

The recorder muxes the room feed's shared packets (forwarded or mixed)
without decoding them. Files live under `<data_dir>/recordings/<room>/`,
each with a small JSON sidecar. Must not import aiohttp or `server/`.
"""

from __future__ import annotations

import fractions
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av

from media.packets import FRAME_SAMPLES, SAMPLE_RATE, SharedPacket

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-[a-z0-9_-]{6,16}\.ogg$", re.IGNORECASE)
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
Clock = Callable[[], float]  # Unix seconds
# A live recording rewrites its sidecar every HEARTBEAT_PACKETS (20 s); one
# whose sidecar is older than STALE_S was left open by a process that ended.
HEARTBEAT_PACKETS = 1000
STALE_S = 60.0


@dataclass(frozen=True, slots=True)
class Replay:
    """A recording as listed in the room state."""

    name: str
    started_at: float
    ended_at: float | None
    duration_s: float | None
    live: bool
    # when the first audio was written (offset 0 of the file); None before,
    # and in sidecars written before it was kept (then `started_at` is used)
    audio_at: float | None = None

    @property
    def zero_at(self) -> float:
        """The time offset 0 of the file stands for."""
        return self.started_at if self.audio_at is None else self.audio_at


def is_recording_name(name: str) -> bool:
    return bool(_NAME.match(name))


def room_dir(root: Path, room: str) -> Path:
    return root / room


class Recorder:
    """Writes one live session; `write` takes the room feed's packets."""

    def __init__(
        self, root: Path, room: str, now: float | None = None, clock: Clock = time.time
    ) -> None:
        started = clock() if now is None else now
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started))
        self.room = room
        self.started_at = started
        self.audio_at: float | None = None
        self._clock = clock
        self.name = f"{stamp}-{secrets.token_hex(4)}.ogg"
        directory = room_dir(root, room)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.name
        self._container = av.open(str(self.path), "w", format="ogg")
        stream = self._container.add_stream("libopus", rate=SAMPLE_RATE)
        ctx = stream.codec_context
        ctx.layout = "stereo"
        ctx.format = "s16"
        ctx.open()  # builds the OpusHead the muxer needs; we never encode with it
        self._stream = stream
        self._first_ts: int | None = None
        self._last_pts = -FRAME_SAMPLES
        self.packets = 0
        # () -> whether this process may write now (it holds the room's media lease)
        self.gate: Callable[[], bool] | None = None
        self._write_sidecar(None)
        logger.info("room %s: recording to %s", room, self.path)

    def write(self, packet: SharedPacket) -> None:
        if self.gate is not None and not self.gate():
            return  # the process may have lost the room's media: never write for it
        if self._first_ts is None:
            self._first_ts = packet.timestamp
            self.audio_at = self._clock()
            self._write_sidecar(None)  # replays place their moments from here
        pts = max(packet.timestamp - self._first_ts, self._last_pts + 1)
        out = av.Packet(packet.payload)
        out.stream = self._stream
        out.pts = out.dts = pts
        out.duration = FRAME_SAMPLES
        out.time_base = _TIME_BASE
        self._container.mux(out)
        self._last_pts = pts
        self.packets += 1
        if self.packets % HEARTBEAT_PACKETS == 0:
            self._write_sidecar(None)  # still live: see STALE_S

    def close(self, now: float | None = None) -> Replay:
        ended = self._clock() if now is None else now
        try:
            self._container.close()
        except av.FFmpegError:
            logger.exception("room %s: closing recording %s failed", self.room, self.name)
        replay = self._write_sidecar(ended)
        logger.info("room %s: recording %s closed (%d packets)", self.room, self.name, self.packets)
        return replay

    def _write_sidecar(self, ended: float | None) -> Replay:
        duration = None if ended is None else (self._last_pts + FRAME_SAMPLES) / SAMPLE_RATE
        replay = Replay(self.name, self.started_at, ended, duration, ended is None, self.audio_at)
        self.path.with_suffix(".json").write_text(json.dumps(asdict(replay)))
        return replay


def list_replays(root: Path, room: str, now: float | None = None) -> list[Replay]:
    """The room's recordings, oldest first. One whose sidecar still says
    live but was last written `STALE_S` before `now` was never closed (the
    process ended): it is listed as ended when its files last changed."""
    directory = room_dir(root, room)
    if not directory.is_dir():
        return []
    replays = []
    for path in sorted(directory.glob("*.json")):
        try:
            replay = Replay(**json.loads(path.read_text()))
            if replay.live and now is not None:
                replay = _unless_stale(replay, path, now)
            replays.append(replay)
        except (OSError, ValueError, TypeError):
            logger.warning("room %s: unreadable replay sidecar %s", room, path.name)
    return replays


def _unless_stale(replay: Replay, sidecar: Path, now: float) -> Replay:
    if now - sidecar.stat().st_mtime < STALE_S:
        return replay
    last = max(sidecar.stat().st_mtime, sidecar.with_suffix(".ogg").stat().st_mtime)
    duration = round(max(0.0, last - replay.zero_at), 2)
    return replace(replay, ended_at=last, duration_s=duration, live=False)
