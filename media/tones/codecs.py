"""The encoded files: one spec per format (codec, container, rate, bit
rate), the encoder that writes a spec from float samples, and the decoder
that reads a file back for measuring. Deterministic: the same samples give
the same bytes (bit-exact muxing, no creation times, fixed Ogg serials).

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.container
import numpy as np

from media.tones.model import ToneMeta
from media.tones.source import WORK_RATE, work_layout

CHUNK = 4096
BITEXACT = {"fflags": "+bitexact"}


@dataclass(frozen=True)
class Spec:
    format: str  # the product format: opus, m4r, m4a, mp3, 3gp, preview
    ext: str
    codec: str  # FFmpeg encoder
    wire_codec: str  # what the protocol calls it
    container: str  # FFmpeg muxer
    wire_container: str
    rate: int
    bitrate: int
    frame_size: int
    mono: bool = False  # always one channel, whatever the source
    options: tuple[tuple[str, str], ...] = ()
    # what the encoder typically takes off the loudness (LAME's low-pass cuts
    # the top of the band, which K-weighting counts high): the first encode
    # starts this much louder, and the correction loop handles the rest
    loss_db: float = 0.0

    def channels(self, source_channels: int) -> int:
        return 1 if self.mono else min(source_channels, 2)


OPUS = Spec("opus", "opus", "libopus", "opus", "ogg", "ogg", 48_000, 48_000, 960,
            options=(("vbr", "on"), ("application", "audio")))  # fmt: skip
M4R = Spec("m4r", "m4r", "aac", "aac", "ipod", "mp4", 44_100, 160_000, 1024)
M4A = Spec("m4a", "m4a", "aac", "aac", "ipod", "mp4", 44_100, 160_000, 1024)
MP3 = Spec("mp3", "mp3", "libmp3lame", "mp3", "mp3", "mp3", 44_100, 160_000, 1152, loss_db=0.45)
AMR = Spec("3gp", "3gp", "libopencore_amrnb", "amr_nb", "3gp", "3gp", 8_000, 12_200, 160, mono=True)
PREVIEW = Spec(
    "preview",
    "mp3",
    "libmp3lame",
    "mp3",
    "mp3",
    "mp3",
    44_100,
    64_000,
    1152,
    mono=True,
    loss_db=0.45,
)
VARIANTS = (OPUS, M4R, M4A, MP3, AMR)  # the order of ToneResult.variants


def _metadata(meta: ToneMeta, spec: Spec) -> dict[str, str]:
    tags = {"title": meta.title, "artist": meta.creator, "comment": ", ".join(meta.tags)}
    if spec.format == "m4r":
        tags["genre"] = "Ringtone"  # also keeps the .m4r's bytes apart from the .m4a's
    return {k: v for k, v in tags.items() if v}


def encode(x: np.ndarray, spec: Spec, path: Path, meta: ToneMeta) -> None:
    """Write samples (float, WORK_RATE, shape (channels, n)) as `spec`."""
    channels = spec.channels(x.shape[0])
    layout = work_layout(channels)
    with av.open(str(path), "w", format=spec.container, options=BITEXACT) as out:
        out.metadata.update(_metadata(meta, spec))
        stream = cast(
            av.AudioStream, out.add_stream(spec.codec, rate=spec.rate, options=dict(spec.options))
        )
        ctx = stream.codec_context
        ctx.layout = layout
        ctx.bit_rate = spec.bitrate
        ctx.time_base = Fraction(1, spec.rate)
        ctx.flags |= av.codec.context.Flags.bitexact
        ctx.thread_count = 1
        resampler = av.AudioResampler(
            format=cast(av.AudioFormat, ctx.format).name,
            layout=layout,
            rate=spec.rate,
            frame_size=spec.frame_size,
        )
        pts = 0
        for frame in _frames(x if channels == x.shape[0] else _mono(x)):
            for chunk in resampler.resample(frame):
                chunk.pts = pts
                pts += chunk.samples
                out.mux(stream.encode(chunk))
        for chunk in resampler.resample(None):
            chunk.pts = pts
            pts += chunk.samples
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))


def remux(src: Path, dest: Path, spec: Spec, meta: ToneMeta) -> None:
    """The same encoded audio in another file (m4a from m4r): no re-encoding."""
    with (
        av.open(str(src)) as inp,
        av.open(str(dest), "w", format=spec.container, options=BITEXACT) as out,
    ):
        out.metadata.update(_metadata(meta, spec))
        istream = inp.streams.audio[0]
        ostream = out.add_stream_from_template(istream)
        for packet in inp.demux(istream):
            if packet.dts is None:
                continue
            packet.stream = ostream
            out.mux(packet)


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=0, keepdims=True).astype(np.float32)


def _frames(x: np.ndarray) -> list[av.AudioFrame]:
    layout = work_layout(x.shape[0])
    frames = []
    for i in range(0, x.shape[1], CHUNK):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x[:, i : i + CHUNK]), format="fltp", layout=layout
        )
        frame.sample_rate = WORK_RATE
        frame.pts = i
        frame.time_base = Fraction(1, WORK_RATE)
        frames.append(frame)
    return frames


@dataclass(frozen=True)
class Decoded:
    samples: np.ndarray  # float, WORK_RATE, the file's channels
    codec: str
    container: str
    sample_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / WORK_RATE


def decode_file(path: Path) -> Decoded:
    """A file read back, whole, at WORK_RATE (for measuring what we made)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        channels = ctx.layout.nb_channels
        resampler = av.AudioResampler(format="fltp", layout=work_layout(channels), rate=WORK_RATE)
        chunks = [f.to_ndarray() for fr in container.decode(stream) for f in resampler.resample(fr)]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
        samples = np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), np.float32)
        return Decoded(
            samples.astype(np.float32), ctx.name, container.format.name, ctx.sample_rate, channels
        )
