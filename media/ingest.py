"""Ingest: one publisher's audio as it arrives over RTP.

A `Publisher` takes the Opus payloads its peer receives (no jitter buffer)
on the event loop and only queues them; the room's tick (on the media
thread, media.ticker) decodes each once to mono PCM for the mixer and the
level meter, and keeps only a few frames so a bursty or stalled publisher
never stalls the mix.
Must not import aiohttp, socketio or `server/`.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt

from media.packets import FRAME_SAMPLES, SAMPLE_RATE

logger = logging.getLogger(__name__)

Pcm = npt.NDArray[np.float32]
# (publisher, payload, rtp timestamp) -> None
PacketSink = Callable[["Publisher", bytes, int], None]


def new_decoder() -> av.AudioCodecContext:
    ctx = av.CodecContext.create("libopus", "r")
    ctx.format = "s16"
    ctx.layout = "mono"
    ctx.sample_rate = SAMPLE_RATE
    return ctx


def level_dbov(pcm: Pcm) -> float:
    """RMS level in dBov (0 is full scale, -127 digital silence)."""
    if pcm.size == 0:
        return -127.0
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))
    return max(-127.0, 20.0 * math.log10(rms)) if rms > 0 else -127.0


class PcmFifo:
    """Decoded samples waiting for the mixer, cut into 20 ms frames.

    Latency control: if, over half a second, samples were always left over
    after the mixer took its frame, the input runs ahead; 10 ms are dropped.
    """

    SHRINK_EVERY = 25  # pops
    SHRINK_SAMPLES = FRAME_SAMPLES // 2

    def __init__(self, max_frames: int) -> None:
        self._chunks: deque[Pcm] = deque()
        self._size = 0
        self._limit = max_frames * FRAME_SAMPLES
        self._pops = 0
        self._min_left = self._limit

    def __len__(self) -> int:
        return self._size

    def push(self, pcm: Pcm) -> None:
        self._chunks.append(pcm)
        self._size += pcm.size
        while self._size - self._chunks[0].size >= self._limit:
            self._size -= self._chunks.popleft().size

    def pop_frame(self) -> Pcm | None:
        if self._size < FRAME_SAMPLES:
            return None
        parts: list[Pcm] = []
        need = FRAME_SAMPLES
        while need:
            head = self._chunks[0]
            if head.size <= need:
                parts.append(self._chunks.popleft())
                need -= head.size
            else:
                parts.append(head[:need])
                self._chunks[0] = head[need:]
                need = 0
        self._size -= FRAME_SAMPLES
        self._watch_depth()
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _watch_depth(self) -> None:
        self._min_left = min(self._min_left, self._size)
        self._pops += 1
        if self._pops < self.SHRINK_EVERY:
            return
        if self._min_left >= self.SHRINK_SAMPLES:
            self._discard(self.SHRINK_SAMPLES)
        self._pops, self._min_left = 0, self._limit

    def _discard(self, samples: int) -> None:
        while samples and self._chunks:
            head = self._chunks[0]
            if head.size <= samples:
                self._chunks.popleft()
                taken = head.size
            else:
                self._chunks[0] = head[samples:]
                taken = samples
            samples -= taken
            self._size -= taken


class Publisher:
    """A voice on stage: identity, mute, last sign of life, decoded input."""

    def __init__(
        self,
        room: str,
        identity: str,
        session_id: str,
        sink: PacketSink,
        clock: Callable[[], float],
        input_frames: int,
    ) -> None:
        self.room = room
        self.identity = identity
        self.session_id = session_id
        self.muted = False
        self.fifo = PcmFifo(input_frames)
        self.level = -127.0
        self.packets = 0
        self.last_rx: float | None = None
        self._peak_since_report = -127.0
        self._sink = sink
        self._clock = clock
        self._decoder = new_decoder()
        # Payloads not decoded yet: appended on the loop, taken by the tick
        # (deque appends and pops are atomic, so no lock between the two).
        self._inbox: deque[bytes] = deque(maxlen=8 * input_frames)

    def on_rtp(self, payload: bytes, timestamp: int) -> None:
        """Called on the loop for every RTP packet of this publisher, in
        arrival order: noted for decoding at the next tick, and offered to
        the forward path at once."""
        if not payload:
            return
        self.last_rx = self._clock()
        self.packets += 1
        self._inbox.append(payload)
        self._sink(self, payload, timestamp)

    def decode_pending(self) -> None:
        """The tick's part: decode what arrived since the last tick."""
        inbox = self._inbox
        while inbox:
            pcm = self._decode(inbox.popleft())
            if pcm is not None and pcm.size:
                self.level = level_dbov(pcm)
                self._peak_since_report = max(self._peak_since_report, self.level)
                self.fifo.push(pcm)

    def _decode(self, payload: bytes) -> Pcm | None:
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError as exc:
            logger.debug(
                "room %s: %s sent an undecodable packet: %s", self.room, self.identity, exc
            )
            return None
        parts = [f.to_ndarray().reshape(-1).astype(np.float32) / 32768.0 for f in frames]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def take_peak(self) -> float:
        """The loudest level since the last call (for coalesced reports)."""
        peak, self._peak_since_report = self._peak_since_report, -127.0
        return peak

    def is_stalled(self, now: float, grace_s: float) -> bool:
        return self.last_rx is None or now - self.last_rx > grace_s


class RtpTap:
    """Hands a peer's RTP to its publisher once the engine has made it."""

    __slots__ = ("publisher",)

    def __init__(self) -> None:
        self.publisher: Publisher | None = None

    def __call__(self, payload: bytes, timestamp: int) -> None:
        if self.publisher is not None:
            self.publisher.on_rtp(payload, timestamp)
