"""Loudness (EBU R128 / ITU-R BS.1770) measured with FFmpeg's `ebur128`
filter, and the sample work between decode and encode: fades, gain and the
limiter (`alimiter`), each run through an `av.filter.Graph` on float
samples at WORK_RATE.

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import av.filter
import numpy as np

from media.tones.model import SHORT_S
from media.tones.source import WORK_RATE, work_layout

CHUNK = 4096
FADE_IN_S = 0.010
FADE_OUT_S = 0.300
BLOCK_S = 0.5  # at least one 400 ms gating block, and the filter's last frame
SILENCE_LUFS = -70.0  # ebur128's floor for a sound with nothing in it


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS, gated
    momentary_max: float  # LUFS, the loudest 400 ms
    true_peak: float  # dBTP
    duration_s: float

    @property
    def level(self) -> float:
        """What we normalize: integrated, or the loudest 400 ms of a short sound."""
        return self.integrated if self.duration_s >= SHORT_S else self.momentary_max


def _frames(x: np.ndarray, rate: int) -> list[av.AudioFrame]:
    layout = work_layout(x.shape[0])
    frames = []
    for i in range(0, x.shape[1], CHUNK):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x[:, i : i + CHUNK]), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        frame.pts = i
        frame.time_base = Fraction(1, rate)
        frames.append(frame)
    return frames


def _graph(
    x: np.ndarray, rate: int, chain: list[tuple[str, str]]
) -> tuple[av.filter.Graph, list[av.AudioFrame]]:
    graph = av.filter.Graph()
    node = graph.add_abuffer(
        sample_rate=rate, format="fltp", layout=work_layout(x.shape[0]), time_base=Fraction(1, rate)
    )
    for name, args in chain:
        nxt = graph.add(name, args)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    return graph, _frames(x, rate)


def _drain(graph: av.filter.Graph) -> list[av.AudioFrame]:
    out: list[av.AudioFrame] = []
    while True:
        try:
            out.append(cast(av.AudioFrame, graph.pull()))
        except (av.BlockingIOError, av.EOFError):
            return out


def run_chain(x: np.ndarray, chain: list[tuple[str, str]], rate: int = WORK_RATE) -> np.ndarray:
    """Samples through a chain of FFmpeg audio filters; same shape out."""
    chain = [*chain, ("aformat", f"sample_fmts=fltp:sample_rates={rate}")]
    graph, frames = _graph(x, rate, chain)
    pulled: list[av.AudioFrame] = []
    for frame in frames:
        graph.push(frame)
        pulled += _drain(graph)
    graph.push(None)
    pulled += _drain(graph)
    if not pulled:
        return np.zeros_like(x)
    y = np.concatenate([f.to_ndarray() for f in pulled], axis=1).astype(np.float32)
    return y[:, : x.shape[1]]


def measure(x: np.ndarray, rate: int = WORK_RATE) -> Loudness:
    """Integrated loudness, the loudest 400 ms and the true peak of samples.
    A sound shorter than one 400 ms block is measured with silence after it
    (its energy over the block), so a 0.3 s blip has a level too."""
    duration_s = x.shape[1] / rate
    if x.shape[1] < BLOCK_S * rate:
        x = np.pad(x, ((0, 0), (0, round(BLOCK_S * rate) - x.shape[1])))
    graph, frames = _graph(x, rate, [("ebur128", "peak=true:metadata=1")])
    momentary, peak, integrated = SILENCE_LUFS, 0.0, SILENCE_LUFS

    def read(pulled: list[av.AudioFrame]) -> None:
        nonlocal momentary, peak, integrated
        for f in pulled:
            meta = f.metadata
            if "lavfi.r128.M" in meta:
                momentary = max(momentary, float(meta["lavfi.r128.M"]))
                integrated = float(meta["lavfi.r128.I"])
                peak = max(peak, float(meta.get("lavfi.r128.true_peak", 0.0)))

    for frame in frames:
        graph.push(frame)
        read(_drain(graph))
    graph.push(None)
    read(_drain(graph))
    # the filter reports its blocks late: the sample peak bounds the true peak from below
    peak = max(peak, float(np.max(np.abs(x))) if x.size else 0.0)
    return Loudness(
        integrated=max(integrated, SILENCE_LUFS),
        momentary_max=max(momentary, SILENCE_LUFS),
        true_peak=to_db(peak),
        duration_s=duration_s,
    )


def to_db(linear: float) -> float:
    return 20 * math.log10(linear) if linear > 1e-9 else -180.0


def fade(x: np.ndarray, rate: int = WORK_RATE) -> np.ndarray:
    """A short fade-in (no click at the start) and a fade-out (a ringtone that
    loops must not end on a cut)."""
    n = x.shape[1]
    y = x.copy()
    fin = min(round(FADE_IN_S * rate), n // 4)
    fout = min(round(FADE_OUT_S * rate), n // 4)
    if fin:
        y[:, :fin] *= np.linspace(0.0, 1.0, fin, endpoint=False, dtype=np.float32)
    if fout:
        y[:, n - fout :] *= np.cos(np.linspace(0.0, np.pi / 2, fout, dtype=np.float32)) ** 2
        y[:, -1] = 0.0
    return y


def gain_and_limit(x: np.ndarray, gain_db: float, ceiling_db: float) -> np.ndarray:
    """Linear gain, then a look-ahead limiter that keeps sample peaks under
    the ceiling (no automatic make-up level; latency compensated)."""
    limit = min(1.0, max(0.0625, 10 ** (ceiling_db / 20)))
    chain = [
        ("volume", f"volume={gain_db:.4f}dB:precision=float"),
        ("alimiter", f"limit={limit:.6f}:attack=5:release=60:level=disabled:latency=1"),
    ]
    y = run_chain(x, chain)
    return np.clip(y, -limit, limit)
