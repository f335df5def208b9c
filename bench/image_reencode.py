"""Product image benchmark: media.images.reencode (bounds checked, EXIF
orientation, metadata dropped, 1200 px WebP) against a plain Pillow
baseline (open, shrink, save WebP) on the same photos, and how long the
event loop's thread is kept from running while images are re-encoded in
worker threads (Pillow releases the GIL while it decodes, resizes and
encodes: the loop should barely notice).

    python bench/image_reencode.py [--runs 5] [--sizes 1200x800,4000x3000,8000x5000]

Prints a Markdown table: seconds per image (median), the ratio to the
baseline, and the longest gap of a 1 ms ticker on the main thread while
two workers re-encode (baseline and ours; on a busy machine the gap also
holds the time the OS gave other processes).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import ExifTags, Image

from commerce.images import BOUNDS
from media.images import reencode


def photo(width: int, height: int) -> bytes:
    """A JPEG with texture (not one flat colour), orientation 6 and GPS."""
    image = Image.effect_mandelbrot((width, height), (-2.0, -1.2, 1.0, 1.2), 60).convert("RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif.get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] = "N"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def ours(data: bytes) -> bytes:
    kw = {"max_pixels": BOUNDS.max_pixels, "max_side": BOUNDS.max_side}
    return reencode(data, quality=BOUNDS.quality, formats=BOUNDS.formats, **kw).data


def baseline(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((BOUNDS.max_side, BOUNDS.max_side))
        out = io.BytesIO()
        image.save(out, "WEBP", quality=BOUNDS.quality, method=4)
    return out.getvalue()


def median_s(work: Callable[[bytes], bytes], data: bytes, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work(data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def loop_gap_s(work: Callable[[bytes], bytes], data: bytes, jobs: int) -> float:
    """The longest the main thread waited for its turn while 2 workers ran."""
    done = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(work, data) for _ in range(jobs)]

        def wait_all() -> None:
            for future in futures:
                future.result()
            done.set()

        threading.Thread(target=wait_all).start()
        longest, last = 0.0, time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now
    return longest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1200x800,4000x3000,8000x5000")
    args = parser.parse_args()
    ours(photo(64, 48))  # Pillow loads its plugins once
    print("| photo | bytes | baseline s | droproom s | ratio | main gap ms, baseline | droproom |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes.split(","):
        width, height = (int(n) for n in size.split("x"))
        data = photo(width, height)
        base = median_s(baseline, data, args.runs)
        mine = median_s(ours, data, args.runs)
        base_gap = loop_gap_s(baseline, data, 4)
        gap = loop_gap_s(ours, data, 4)
        print(
            f"| {size} | {len(data)} | {base:.3f} | {mine:.3f} | {mine / base:.2f} "
            f"| {base_gap * 1000:.1f} | {gap * 1000:.1f} |"
        )


if __name__ == "__main__":
    main()
