"""Tone processing: CPU seconds per tone (every variant, the preview and the
bundle) for 5 s and 30 s windows, wall seconds, and how many tones a
minute one core turns out; with two baselines measured in the same run on
the same source: decode + one plain encode (AAC .m4r, no loudness work),
and decode + all five variants encoded once with no measuring or
correction. The ratios say what loudness normalization and the
encode-measure-correct loop cost.

    python bench/tone_processing.py [--runs 3] [--lengths 5,30] [--pool]

Everything runs in this process on one thread (codecs and filters are
single-threaded here), so CPU seconds are `time.process_time()`. `--pool`
adds a row per length through `TonePool` (a spawned worker at nice 10):
its wall time, which includes the worker's start for the first job.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from media.tones import ToneMeta, TonePool, Window, process
from media.tones.codecs import AMR, M4A, M4R, MP3, OPUS, encode
from media.tones.loudness import fade
from media.tones.source import decode_window
from tests.tone_helpers import music, write

META = ToneMeta(title="Bench Tone", creator="bench", tags=("bench",))


def timed(step: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median CPU seconds and median wall seconds of `runs` calls."""
    cpu, wall = [], []
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        step()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def baseline_one(src: Path, out: Path, window: Window) -> None:
    encode(fade(decode_window(src, window)), M4R, out / "plain.m4r", META)


def baseline_all(src: Path, out: Path, window: Window) -> None:
    x = fade(decode_window(src, window))
    for spec in (OPUS, M4R, M4A, MP3, AMR):
        encode(x, spec, out / f"plain.{spec.ext}", META)


def pool_wall(src: Path, out: Path, window: Window) -> float:
    async def run() -> float:
        pool = TonePool(job_timeout_s=600)
        try:
            w0 = time.perf_counter()
            await pool.run(src, out, window, META)
            return time.perf_counter() - w0
        finally:
            await pool.aclose()

    return asyncio.run(run())


Row = tuple[str, str, float, float, float]


def bench_length(root: Path, length: float, runs: int, pool: bool) -> list[Row]:
    src = write(root / f"src-{length:g}.wav", music(length + 1.0), "pcm_s16le")
    window = Window(0.5, length)
    out = root / f"out-{length:g}"
    out.mkdir()
    one = timed(functools.partial(baseline_one, src, out, window), runs)
    five = timed(functools.partial(baseline_all, src, out, window), runs)
    full = timed(functools.partial(process, src, out, window, META), runs)
    name = f"{length:g} s"
    rows = [
        (name, "baseline: decode + one AAC encode", *one, one[0]),
        (name, "baseline: decode + 5 encodes, no loudness", *five, one[0]),
        (name, "tone: normalize, 5 variants corrected, preview, bundle", *full, one[0]),
    ]
    if pool:
        wall = pool_wall(src, out, window)
        rows.append((name, "tone through TonePool (wall only)", float("nan"), wall, one[0]))
    notes = process(src, out, window, META).notes
    print(f"{name}: " + "; ".join(notes), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lengths", default="5,30")
    parser.add_argument("--pool", action="store_true")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tone-bench-") as tmp:
        for length in [float(s) for s in args.lengths.split(",")]:
            rows += bench_length(Path(tmp), length, args.runs, args.pool)
    print_table(rows, args.runs)


def print_table(rows: list[Row], runs: int) -> None:
    print(f"median of {runs} runs, one process, one thread")
    header = "| window | step | CPU s | wall s | tones/min/core | CPU x baseline |"
    print(header)
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, step, cpu, wall, base in rows:
        if cpu != cpu:  # nan: wall only
            print(f"| {name} | {step} | - | {wall:.2f} | - | - |")
            continue
        per_min = 60.0 / cpu if cpu else float("inf")
        print(f"| {name} | {step} | {cpu:.2f} | {wall:.2f} | {per_min:.1f} | {cpu / base:.1f}x |")


if __name__ == "__main__":
    main()
