"""HLS for the huge tail: a room's mix written as AAC segments by PyAV's
`hls` muxer, and the live playlist that lists them.

    writer = HlsWriter(room, spool_dir, config, first_sequence, on_segment)
    writer.start()                      # its thread (server.audio.hls starts it lazily)
    feed.taps.append(writer.write)      # on the tick: only enqueues (bounded)
    ...                                 # on_segment(Segment) from the writer's thread
    await asyncio.to_thread(writer.close)

The tap hands the room feed's Opus packets to a queue; one thread per room
decodes them, fills every gap with silence (the feed may send nothing, or
DTX, when nobody speaks: the stream's time must stay continuous), encodes
AAC and muxes ~`segment_s` segments into a spool directory. Each finished
segment is announced; where it is stored and who may read the playlist is
`server/`'s business. Must not import aiohttp or `server/`.
"""

from __future__ import annotations

import fractions
import logging
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from media.packets import FRAME_SAMPLES, SAMPLE_RATE, SharedPacket

logger = logging.getLogger(__name__)

AAC_FRAME = 1024
MUXER_PLAYLIST = "muxer.m3u8"
SEGMENT_TYPE = "video/mp2t"
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
_SEGMENT_NAME = re.compile(r"^[0-9]{1,20}\.ts$")
_STOP = object()
# Behind the wall clock by more than this with no packet: silence is
# written up to `_FILL_TO_S` behind it, so a late packet still fits after.
_FILL_AFTER_S = 0.5
_FILL_TO_S = 0.2
# At most this much silence at once: a process that was paused (or a clock
# that leapt) skips the rest instead of writing hours of nothing.
_MAX_FILL_S = 10.0
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class HlsConfig:
    """Segment length, playlist window, AAC bitrate and the tap's queue."""

    segment_s: float = 2.0
    window: int = 6
    bitrate: int = 64000
    queue_packets: int = 250  # 5 s of 20 ms packets

    def __post_init__(self) -> None:
        if not 0.5 <= self.segment_s <= 10:
            raise ValueError("an HLS segment lasts 0.5 to 10 s")
        if not 2 <= self.window <= 30:
            raise ValueError("an HLS playlist lists 2 to 30 segments")
        if not 24000 <= self.bitrate <= 192000:
            raise ValueError("the HLS AAC bitrate is 24000 to 192000 bit/s")


@dataclass(frozen=True, slots=True)
class Segment:
    """One finished segment, as the muxer listed it."""

    sequence: int
    name: str
    duration_s: float
    path: Path


def is_segment_name(name: str) -> bool:
    return bool(_SEGMENT_NAME.match(name))


def parse_muxer_playlist(text: str) -> list[tuple[str, float]]:
    """(file name, duration) of each segment the muxer's playlist lists."""
    found, duration = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            found.append((line, duration))
            duration = None
    return found


def render_playlist(segments: Sequence[tuple[int, str, float]], segment_s: float) -> str:
    """A live media playlist over (sequence, uri, duration), oldest first:
    no ENDLIST, so players keep reloading it."""
    target = max([segment_s, *(d for _, _, d in segments)])
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{int(target + 0.999)}",
        f"#EXT-X-MEDIA-SEQUENCE:{segments[0][0] if segments else 0}",
    ]
    for _, uri, duration in segments:
        lines += [f"#EXTINF:{duration:.6f},", uri]
    return "\n".join(lines) + "\n"


class _Pcm:
    """Decoded mono float audio on the writer's own sample timeline."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("libopus", "r")
        self._decoder.sample_rate = SAMPLE_RATE
        self._decoder.layout = "mono"  # libopus folds a stereo publisher down itself
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        self.buffer: list[npt.NDArray[np.float32]] = []
        self.buffered = 0

    def decode(self, payload: bytes) -> npt.NDArray[np.float32]:
        parts = []
        for frame in self._decoder.decode(av.Packet(payload)):
            for out in self._resampler.resample(frame):
                parts.append(out.to_ndarray().reshape(-1).astype(np.float32))
        return np.concatenate(parts) if parts else np.zeros(FRAME_SAMPLES, np.float32)

    def add(self, pcm: npt.NDArray[np.float32]) -> None:
        self.buffer.append(pcm)
        self.buffered += pcm.size

    def take(self, n: int) -> npt.NDArray[np.float32] | None:
        if self.buffered < n:
            return None
        joined = np.concatenate(self.buffer)
        self.buffer = [joined[n:]]
        self.buffered -= n
        return joined[:n]


class HlsWriter:
    """One room's live HLS, written by its own thread into `spool`."""

    def __init__(
        self,
        room: str,
        spool: Path,
        config: HlsConfig,
        first_sequence: int,
        on_segment: Callable[[Segment], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.room = room
        self.spool = spool
        self.config = config
        self.first_sequence = first_sequence
        self.on_segment = on_segment
        self.clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=config.queue_packets)
        self.dropped = 0  # packets the full queue refused
        self.filled_s = 0.0  # silence written where the feed sent nothing
        self.segments = 0
        self._thread = threading.Thread(target=self._run, name=f"hls:{room}", daemon=True)
        self._started = False

    def start(self) -> None:
        logger.info("room %s: HLS writing starts", self.room)
        self._started = True
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._started

    @property
    def pending(self) -> int:
        """Packets waiting for the thread."""
        return self._queue.qsize()

    def write(self, packet: SharedPacket) -> None:
        """The feed's tap: never blocks; a full queue drops (and counts) it."""
        try:
            self._queue.put_nowait(packet)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Stops the thread (blocking: call it off the loop) and removes the spool."""
        if self._started:
            while True:
                try:
                    self._queue.put(_STOP, timeout=1.0)
                    break
                except queue.Full:
                    self._drain()
            self._thread.join()
        shutil.rmtree(self.spool, ignore_errors=True)

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    # --- the thread ---------------------------------------------------------
    def _run(self) -> None:
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            _Muxing(self).run()
        except Exception:
            logger.exception("room %s: HLS writing stopped", self.room)
            self._drain()

    def next_item(self) -> object | None:
        try:
            return self._queue.get(timeout=_POLL_S)
        except queue.Empty:
            return None


class _Muxing:
    """The writer thread's state: decoder, timeline, encoder and muxer."""

    def __init__(self, writer: HlsWriter) -> None:
        self.w = writer
        config = writer.config
        self.playlist = writer.spool / MUXER_PLAYLIST
        options = {
            "hls_time": f"{config.segment_s:g}",
            "hls_list_size": "3",
            "hls_segment_filename": str(writer.spool / "%d.ts"),
            "start_number": str(writer.first_sequence),
            "hls_flags": "omit_endlist",
        }
        self.container = av.open(str(self.playlist), "w", format="hls", options=options)
        stream = self.container.add_stream("aac", rate=SAMPLE_RATE)
        stream.codec_context.layout = "mono"
        stream.codec_context.format = "fltp"
        stream.codec_context.bit_rate = config.bitrate
        self.stream = stream
        self.pcm = _Pcm()
        self.t0: float | None = None  # wall time of sample 0
        self.ts0 = 0  # feed timestamp of sample 0
        self.placed = 0  # samples placed on the timeline (decoded or silence)
        self.encoded = 0
        self.announced = writer.first_sequence - 1
        self.seen_mtime = 0

    def run(self) -> None:
        try:
            while True:
                item = self.w.next_item()
                if item is _STOP:
                    return
                if isinstance(item, SharedPacket):
                    self.take(item)
                self.cover_silence()
                self.encode()
        finally:
            try:
                self.container.close()
            except av.FFmpegError:
                logger.warning("room %s: closing the HLS muxer failed", self.w.room)

    def take(self, packet: SharedPacket) -> None:
        now = self.w.clock()
        if self.t0 is None:
            self.t0, self.ts0 = now, packet.timestamp
        pos = packet.timestamp - self.ts0
        wall = int((now - self.t0) * SAMPLE_RATE)
        # A gap in the feed's own time is silence (never ahead of the clock);
        # a packet that would overlap what is written is placed right after it.
        gap = min(pos - self.placed, wall - self.placed)
        if gap > FRAME_SAMPLES // 2:
            self.silence(gap)
        self.ts0 = packet.timestamp - self.placed
        pcm = self.pcm.decode(packet.payload)
        self.pcm.add(pcm)
        self.placed += pcm.size

    def cover_silence(self) -> None:
        if self.t0 is None:
            return
        behind = (self.w.clock() - self.t0) - self.placed / SAMPLE_RATE
        if behind > _FILL_AFTER_S:
            self.silence(int((behind - _FILL_TO_S) * SAMPLE_RATE))

    def silence(self, samples: int) -> None:
        most = int(_MAX_FILL_S * SAMPLE_RATE)
        if samples > most:
            assert self.t0 is not None
            self.t0 += (samples - most) / SAMPLE_RATE  # the wall clock's leap is skipped
            samples = most
        self.pcm.add(np.zeros(samples, np.float32))
        self.placed += samples
        self.w.filled_s += samples / SAMPLE_RATE

    def encode(self) -> None:
        while (chunk := self.pcm.take(AAC_FRAME)) is not None:
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self.encoded
            frame.time_base = _TIME_BASE
            self.encoded += AAC_FRAME
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
                self.announce()

    def announce(self) -> None:
        """The muxer rewrites its playlist when a segment is complete."""
        try:
            mtime = self.playlist.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self.seen_mtime:
            return
        self.seen_mtime = mtime
        for name, duration in parse_muxer_playlist(self.playlist.read_text()):
            sequence = int(name.removesuffix(".ts"))
            if sequence > self.announced:
                self.announced = sequence
                self.w.segments += 1
                segment = Segment(sequence, name, duration, self.w.spool / name)
                self.w.on_segment(segment)
