"""HLS writer cost: CPU per second of room audio for one room's HLS
(decode Opus, AAC encode, the `hls` muxer), against a baseline measured in
the same run (decoding the same Opus packets only).

    python bench/hls_writer.py [--seconds 60] [--bitrate 64000] [--segment 2]

The writer runs flat out on a fake clock (no real-time pacing), so its
thread's CPU time over the audio's length is what one live room costs the
owner, whatever the audience. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import av
import numpy as np

from media.hls import HlsConfig, HlsWriter, Segment
from media.mixer import OpusEncoder
from media.packets import FRAME_SAMPLES, SAMPLE_RATE, SharedPacket


def packets(seconds: float) -> list[SharedPacket]:
    """A voice-like signal (a tone with a slow tremolo) as 20 ms Opus packets."""
    encoder = OpusEncoder()
    out = []
    for i in range(int(seconds * SAMPLE_RATE / FRAME_SAMPLES)):
        n = np.arange(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES)
        pcm = np.sin(2 * np.pi * 220 * n / SAMPLE_RATE) * (0.2 + 0.1 * np.sin(n / 9000))
        out.append(SharedPacket(encoder.encode(pcm.astype(np.float32)), i * FRAME_SAMPLES, 0.0))
    return out


def decode_only(feed: list[SharedPacket]) -> float:
    """CPU seconds to decode every packet (the baseline)."""
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = SAMPLE_RATE
    decoder.layout = "mono"
    start = time.thread_time()
    for packet in feed:
        decoder.decode(av.Packet(packet.payload))
    return time.thread_time() - start


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write_hls(feed: list[SharedPacket], config: HlsConfig) -> tuple[float, int]:
    """(CPU seconds of the writer's thread, segments written)."""
    clock = Clock()
    segments: list[Segment] = []
    cpu: list[float] = []
    with tempfile.TemporaryDirectory() as spool:
        writer = HlsWriter("bench", Path(spool) / "s", config, 1, segments.append, clock)
        run = writer._run  # measure the thread's own CPU time

        def timed() -> None:
            start = time.thread_time()
            run()
            cpu.append(time.thread_time() - start)

        writer._run = timed  # type: ignore[method-assign]
        writer._thread = threading.Thread(target=timed)
        writer.start()
        for packet in feed:  # each taken before the clock moves on: no silence filled
            writer.write(packet)
            while writer.pending:
                time.sleep(0)
            clock.now += FRAME_SAMPLES / SAMPLE_RATE
        writer.close()
        if writer.filled_s or writer.dropped:
            raise SystemExit(f"the bench fed the writer badly: {writer.filled_s} s filled")
    return cpu[0], len(segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bitrate", type=int, default=64000)
    parser.add_argument("--segment", type=float, default=2.0)
    args = parser.parse_args()
    feed = packets(args.seconds)
    config = HlsConfig(segment_s=args.segment, bitrate=args.bitrate)
    base = decode_only(feed)
    cpu, segments = write_hls(feed, config)
    per_s = lambda v: v / args.seconds * 1000  # noqa: E731
    print(f"{args.seconds:.0f} s of room audio, {segments} segments of {args.segment:g} s\n")
    print("| path | CPU ms per audio second | share of one core | vs decode only |")
    print("| --- | --- | --- | --- |")
    print(f"| decode Opus only (baseline) | {per_s(base):.2f} | {base / args.seconds:.2%} | 1.00 |")
    print(
        f"| HLS writer (decode, AAC {args.bitrate // 1000} kbit/s, hls mux) | {per_s(cpu):.2f} "
        f"| {cpu / args.seconds:.2%} | {cpu / base:.2f} |"
    )


if __name__ == "__main__":
    main()
