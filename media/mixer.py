"""The room mixer: decides, every 20 ms and on every packet, what each feed
of a room hears.

- nobody unmuted on stage: every feed gets a silence frame (no encoding);
- one unmuted voice: its Opus packets go to every feed unchanged, on
  arrival (its own feed gets silence);
- several: the voices are summed once per tick, the mix is encoded once for
  the room and once more per speaker who listens (the mix minus their voice);
- a tone playing (`tone:play`, media.tone) is one more voice that nobody is
  excluded from: while it plays the room mixes, even with one voice or none.
A stalled publisher counts as silent for that tick; it never holds the tick.

`tick` only decides and encodes: it returns the tick's `Emission`s, which
the room pushes to its feeds on the event loop (the tick itself may run on
the media thread, media.ticker). Must not import aiohttp, socketio or
`server/`.
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Callable, Iterable, Mapping

import av
import numpy as np

from media.fanout import Feed
from media.ingest import Pcm, Publisher
from media.packets import FRAME_S, FRAME_SAMPLES, OPUS_SILENCE, SAMPLE_RATE
from media.tone import ToneVoice

logger = logging.getLogger(__name__)

TICK = "tick"  # the timeline source of everything the mixer itself makes
# A forwarded voice with no packet for this long is covered by silence.
_STALL_S = 2 * FRAME_S
_MAX_COVER = 3


# (feed, payload, source, source timestamp, time made): one packet for one feed
Emission = tuple[Feed, bytes, object, int, float]


class OpusEncoder:
    """Mono 48 kHz Opus for one continuous feed (encoder state is per stream)."""

    def __init__(self, bitrate: int = 48000) -> None:
        ctx = av.CodecContext.create("libopus", "w")
        ctx.bit_rate = bitrate
        ctx.format = "s16"
        ctx.layout = "mono"
        ctx.sample_rate = SAMPLE_RATE
        ctx.time_base = fractions.Fraction(1, SAMPLE_RATE)
        ctx.options = {"application": "voip"}
        self._ctx = ctx
        self._pts = 0

    def encode(self, pcm: Pcm) -> bytes:
        samples = np.clip(pcm * 32767.0, -32768, 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += FRAME_SAMPLES
        packets = self._ctx.encode(frame)
        return bytes(packets[0]) if packets else OPUS_SILENCE


class Mixer:
    """Drives the feeds of one room from its publishers."""

    def __init__(
        self,
        room: str,
        publishers: Mapping[str, Publisher],
        feeds: Mapping[str | None, Feed],
        clock: Callable[[], float],
    ) -> None:
        self.room = room
        self._publishers = publishers
        self._feeds = feeds
        self._clock = clock
        self._encoders: dict[str | None, OpusEncoder] = {}
        self.encoded = 0
        # Silence frames sent to cover a stalled forwarded voice; as many of
        # its late packets are then dropped, so listeners keep 50 packets/s.
        self._covered = 0
        self.tone: ToneVoice | None = None
        self.tone_ended: ToneVoice | None = None  # set by the tick that played its end
        # Where the forward path's packets go when the room sends from the
        # media thread (None: pushed to the feeds at once, on the loop).
        self.forward: Callable[[list[Emission]], None] | None = None

    def active(self) -> list[Publisher]:
        return [p for p in self._publishers.values() if not p.muted]

    def on_packet(self, publisher: Publisher, payload: bytes, timestamp: int) -> None:
        """Forward path: the only unmuted voice goes out as it arrives."""
        active = self.active()
        if len(active) != 1 or active[0] is not publisher or self.tone is not None:
            return
        if self._covered:
            self._covered -= 1
            return
        now = self._clock()
        out: list[Emission] = [
            (feed, payload, publisher, timestamp, now)
            for excluded, feed in list(self._feeds.items())
            if excluded != publisher.identity
        ]
        if self.forward is not None:
            self.forward(out)
        else:
            for feed, data, source, ts, made in out:
                feed.push(data, source, ts, made)

    def tick(self, tick_no: int) -> list[Emission]:
        """Decode, mix, encode: what every feed gets for this tick."""
        now = self._clock()
        for p in self._publishers.values():
            p.decode_pending()
        active = self.active()
        tone = self._tone_frame()
        mixing = len(active) > 1 or tone is not None
        for p in self._publishers.values():
            if p.muted or not mixing:
                p.fifo.pop_frame()  # keep idle inputs fresh for when mixing starts
        if mixing:
            out = self._tick_mixing(active, tick_no, now, tone)
        elif active:
            out = self._tick_forwarding(active[0], tick_no, now)
        else:
            out = self._silence(self._feeds.values(), tick_no, now)
        for excluded in [e for e in self._encoders if e not in self._feeds]:
            del self._encoders[excluded]
        return out

    def _tick_forwarding(self, voice: Publisher, tick_no: int, now: float) -> list[Emission]:
        stalled = voice.is_stalled(now, _STALL_S)
        if stalled:
            self._covered = min(self._covered + 1, _MAX_COVER)
        quiet = [f for e, f in self._feeds.items() if stalled or e == voice.identity]
        return self._silence(quiet, tick_no, now)

    def _tone_frame(self) -> Pcm | None:
        if self.tone is None:
            return None
        frame = self.tone.pop_frame()
        if frame is None or self.tone.done:
            self.tone_ended, self.tone = self.tone, None
        return frame

    def _tick_mixing(
        self, active: list[Publisher], tick_no: int, now: float, tone: Pcm | None = None
    ) -> list[Emission]:
        frames = {p.identity: p.fifo.pop_frame() for p in active}
        heard = [f for f in frames.values() if f is not None]
        if tone is not None:
            heard.append(tone)
        if not heard:
            return self._silence(self._feeds.values(), tick_no, now)
        total: Pcm = np.sum(heard, axis=0, dtype=np.float32) if len(heard) > 1 else heard[0]
        ts = tick_no * FRAME_SAMPLES
        main_payload = self._encode(None, total)
        out: list[Emission] = []
        for excluded, feed in list(self._feeds.items()):
            own = frames.get(excluded) if excluded is not None else None
            if own is None:
                payload = main_payload
            elif len(heard) == 1:
                payload = OPUS_SILENCE
            else:
                payload = self._encode(excluded, total - own)
            out.append((feed, payload, TICK, ts, now))
        return out

    def _encode(self, key: str | None, pcm: Pcm) -> bytes:
        encoder = self._encoders.get(key)
        if encoder is None:
            encoder = self._encoders[key] = OpusEncoder()
        self.encoded += 1
        return encoder.encode(pcm)

    @staticmethod
    def _silence(feeds: Iterable[Feed], tick_no: int, now: float) -> list[Emission]:
        ts = tick_no * FRAME_SAMPLES
        return [(feed, OPUS_SILENCE, TICK, ts, now) for feed in list(feeds)]
