"""Sounds made for the tone tests and the benchmark (written with PyAV in
any format), an independent loudness meter (FFmpeg's `ebur128` filter on
the file as decoded, at its own rate), and jobs that misbehave inside the
pool's worker process (they must live in an importable module: the worker
is spawned)."""

from __future__ import annotations

import os
import signal
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import av.filter
import numpy as np
import numpy.typing as npt

from media.tones import ToneMeta, ToneResult, Window, process

Samples = npt.NDArray[np.float32]
RATE = 44_100


def music(seconds: float, channels: int = 2, rate: int = RATE, seed: int = 1) -> Samples:
    """Chords that come and go, a little noise: something like a ringtone."""
    t = np.arange(int(seconds * rate)) / rate
    notes = [(220.0, 1.0), (330.0, 1.5), (440.0, 0.75), (554.4, 2.0)]
    x = sum(0.1 * np.sin(2 * np.pi * f * t) * (np.sin(2 * np.pi * r * t) > 0) for f, r in notes)
    noise = np.random.default_rng(seed).standard_normal((channels, t.size)) * 0.01
    return (np.asarray(x)[None, :] + noise).astype(np.float32)


def sine(
    seconds: float, freq: float, amplitude: float, channels: int = 2, rate: int = RATE
) -> Samples:
    t = np.arange(int(seconds * rate)) / rate
    return np.tile(amplitude * np.sin(2 * np.pi * freq * t), (channels, 1)).astype(np.float32)


def clipped(seconds: float, rate: int = RATE) -> Samples:
    """A square-ish, clipped, far too loud sound."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(2).standard_normal(t.size) * 0.5
    return np.tile(np.clip(4 * np.sin(2 * np.pi * 110 * t) + noise, -1, 1), (2, 1)).astype(
        np.float32
    )


def clicks(seconds: float, rate: int = RATE) -> Samples:
    """Two short clicks a second and silence between: no loudness to speak of."""
    x = np.zeros(int(seconds * rate), np.float32)
    x[:: rate // 2] = 0.9
    return x[None, :]


def write(path: Path, x: Samples, codec: str, rate: int = RATE, fmt: str | None = None) -> Path:
    """Samples (float, shape (channels, n), at `rate`) encoded with `codec`."""
    layout = "mono" if x.shape[0] == 1 else "stereo"
    out_rate = 48_000 if codec == "libopus" else rate
    with av.open(str(path), "w", format=fmt) as out:
        stream = cast(av.AudioStream, out.add_stream(codec, rate=out_rate))
        stream.codec_context.layout = layout
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x), format="fltp", layout=layout)
        frame.sample_rate = rate
        ctx = stream.codec_context
        resampler = av.AudioResampler(
            format=cast(av.AudioFormat, ctx.format).name,
            layout=layout,
            rate=out_rate,
            frame_size={"libopus": 960, "aac": 1024, "libmp3lame": 1152}.get(codec),
        )
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return path


def silent_film(path: Path) -> Path:
    """An MP4 with five black video frames and no audio stream."""
    with av.open(str(path), "w") as out:
        stream = cast(av.VideoStream, out.add_stream("mpeg4", rate=10))
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def wav_header(rate: int, channels: int, bits: int, data_bytes: int) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def flac_claiming(path: Path, rate: int, seconds: float) -> Path:
    """A tiny FLAC (0.01 s of silence) whose STREAMINFO claims `seconds`:
    what a decompression bomb's header looks like."""
    write(path, np.zeros((2, rate // 100), np.float32), "flac", rate=rate)
    data = bytearray(path.read_bytes())
    (word,) = struct.unpack(">Q", data[18:26])  # rate(20) channels(3) bits(5) total samples(36)
    word = (word & ~((1 << 36) - 1)) | int(rate * seconds)
    data[18:26] = struct.pack(">Q", word)
    path.write_bytes(bytes(data))
    return path


@dataclass(frozen=True)
class Heard:
    """A file as decoded at its own rate, and measured by `ebur128`."""

    codec: str
    sample_rate: int
    channels: int
    samples: Samples  # float, the file's rate and channels
    integrated: float
    momentary_max: float
    true_peak: float

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def rms(self, start_s: float, end_s: float) -> float:
        a, b = int(start_s * self.sample_rate), int(end_s * self.sample_rate)
        return float(np.sqrt(np.mean(self.samples[:, a:b] ** 2)))


def hear(path: Path) -> Heard:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        layout = "mono" if ctx.layout.nb_channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=ctx.sample_rate)
        frames = [f for fr in container.decode(stream) for f in resampler.resample(fr)]
        frames += resampler.resample(None)
        codec, rate, channels = ctx.name, ctx.sample_rate, ctx.layout.nb_channels
    samples = np.concatenate([f.to_ndarray() for f in frames], axis=1).astype(np.float32)
    short = int(0.5 * rate) - samples.shape[1]
    if short > 0:  # shorter than a 400 ms block: measured with silence after it
        pad = np.zeros((samples.shape[0], short), np.float32)
        frames.append(av.AudioFrame.from_ndarray(pad, format="fltp", layout=layout))
        frames[-1].sample_rate = rate
    integrated, momentary, peak = _ebur128(frames, rate, layout)
    return Heard(codec, rate, channels, samples, integrated, momentary, peak)


def _ebur128(frames: list[av.AudioFrame], rate: int, layout: str) -> tuple[float, float, float]:
    graph = av.filter.Graph()
    src = graph.add_abuffer(
        sample_rate=rate, format="fltp", layout=layout, time_base=Fraction(1, rate)
    )
    meter = graph.add("ebur128", "peak=true:metadata=1")
    sink = graph.add("abuffersink")
    src.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    momentary, peak, integrated = -120.0, 0.0, -120.0
    pts = 0
    for frame in [*frames, None]:
        if frame is not None:
            frame.pts, frame.time_base = pts, Fraction(1, rate)
            pts += frame.samples
        graph.push(frame)
        while True:
            try:
                meta = graph.pull().metadata
            except (av.BlockingIOError, av.EOFError):
                break
            if "lavfi.r128.M" in meta:
                momentary = max(momentary, float(meta["lavfi.r128.M"]))
                integrated = float(meta["lavfi.r128.I"])
                peak = max(peak, float(meta["lavfi.r128.true_peak"]))
    return integrated, momentary, 20 * float(np.log10(max(peak, 1e-9)))


# Jobs for the pool tests: they run in the worker process.
Progress = Callable[[float], None] | None


def misbehaving_job(
    src: Path, out_dir: Path, window: Window, meta: ToneMeta, progress: Progress
) -> ToneResult:
    """The real pipeline, unless the title asks for a crash, a hang or a
    memory hog."""
    if meta.title == "exit":
        os._exit(3)
    if meta.title == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if meta.title == "hang":
        time.sleep(3600)
    if meta.title == "hog":
        hog = bytearray(4 * 1024**3)  # more than the pool's memory limit
        return cast(ToneResult, hog)
    return process(src, out_dir, window, meta, progress)
