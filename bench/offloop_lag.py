"""The event loop's lag while a room mixes three speakers for many
listeners: the tick on the loop (`loop`) against the tick on the media
thread (`thread`), in one process, same run.

    python bench/offloop_lag.py [--listeners 500] [--seconds 8] [--modes loop,thread]
                                [--probes 20] [--rounds 1]

No network peers: three publishers are fed pre-encoded Opus tones (440, 550,
660 Hz) on the loop every 20 ms, as aiortc would hand them in; each listener
is a wire that SRTP-protects (libsrtp, its own key) and `sendto`s every
packet to a loopback sink, as `RtpWire` does (from the media thread in
`thread` mode, from the loop in `loop` mode). Measured per mode: the loop's
lag (how late a 5 ms sleep wakes: p50 / p99 / max), the process's CPU per
listener-second, packets per listener-second, and then the first packet of
`--probes` newcomers (real aiortc peers in this process, one at a time:
WHEP offer -> first RTP) with the others still served. Prints a Markdown
table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from pylibsrtp import Policy, Session

from media.config import MediaConfig
from media.engine import MediaEngine
from media.ice import pre_gather, rtc_configuration
from media.mixer import OpusEncoder
from media.packets import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, SharedPacket
from media.room import RoomMedia
from tests.media_helpers import LOOPBACK

VOICES = (440.0, 550.0, 660.0)
_HEADER = struct.Struct("!BBHII")


class SrtpWire:
    """A listener's send path without a peer: header, SRTP, sendto. Like
    `RtpWire`, written from the media thread when there is one."""

    off_loop = True

    def __init__(self, sink: tuple[str, int]) -> None:
        policy = Policy(
            key=os.urandom(30),
            ssrc_type=Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        self._srtp = Session(policy)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sink = sink
        self._seq = 0
        self.packets = 0

    def writable(self) -> bool:
        return True

    def write(self, packet: SharedPacket) -> None:
        header = _HEADER.pack(0x80, 111, self._seq, packet.timestamp, 1234)
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self._sock.sendto(self._srtp.protect(header + packet.payload), self._sink)
        except BlockingIOError:
            return
        self.packets += 1

    def close(self) -> None:
        self._sock.close()


def tone_packets(freq: float, count: int = 50) -> list[bytes]:
    encoder = OpusEncoder()
    n = np.arange(count * FRAME_SAMPLES)
    pcm = (0.3 * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.float32)
    return [encoder.encode(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(count)]


async def feed_voices(media: RoomMedia) -> None:
    loop = asyncio.get_running_loop()
    voices = [
        (media.add_publisher(f"s{i}", f"session-{i}"), tone_packets(f))
        for i, f in enumerate(VOICES)
    ]
    start, k = loop.time(), 0
    while True:
        for publisher, packets in voices:
            publisher.on_rtp(packets[k % len(packets)], k * FRAME_SAMPLES)
        k += 1
        await asyncio.sleep(max(0.0, start + k * FRAME_S - loop.time()))


async def watch_lag(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + 0.005
        await asyncio.sleep(0.005)
        lags.append(loop.time() - due)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def first_packet(engine: MediaEngine, n: int) -> float | None:
    """A newcomer (a real aiortc peer, in this process): WHEP offer -> its
    first RTP packet, in seconds (None if none within 5 s)."""
    pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
    got = asyncio.Event()

    async def on_rtp(packet: Any, arrival_time_ms: int) -> None:
        got.set()

    pc.addTransceiver("audio", direction="recvonly").receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]
    await pre_gather(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    started = time.perf_counter()
    _, answer = await engine.listen("bench", f"probe{n}", pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    try:
        async with asyncio.timeout(5):
            await got.wait()
        return time.perf_counter() - started
    except TimeoutError:
        return None
    finally:
        await pc.close()


async def run(
    mode: str, listeners: int, seconds: float, sink: tuple[str, int], probes: int
) -> dict[str, Any]:
    engine = MediaEngine(
        MediaConfig(
            data_dir=Path(tempfile.mkdtemp()),
            ice_hosts=("127.0.0.1",),
            record=False,
            media_thread=mode == "thread",
        )
    )
    media = engine._room("bench")
    wires = [SrtpWire(sink) for _ in range(listeners)]
    for i, wire in enumerate(wires):
        media.add_listener(f"l{i}", f"l{i}", wire)
    tasks = [asyncio.create_task(feed_voices(media))]
    await asyncio.sleep(1.0)  # warm up
    lags: list[float] = []
    tasks.append(asyncio.create_task(watch_lag(lags)))
    sent0, cpu0, t0 = sum(w.packets for w in wires), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    sent1, cpu1, t1 = sum(w.packets for w in wires), time.process_time(), time.perf_counter()
    firsts = []
    for n in range(probes):
        firsts.append(await first_packet(engine, n))
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    encoded = media.mixer.encoded
    await engine.aclose()
    for wire in wires:
        wire.close()
    span = t1 - t0
    got = [f for f in firsts if f is not None]
    return {
        "mode": mode,
        "listeners": listeners,
        "lag_ms": [pct(lags, 0.5) * 1e3, pct(lags, 0.99) * 1e3, max(lags) * 1e3],
        "cpu_ms": (cpu1 - cpu0) * 1e3 / (listeners * span),
        "pps": (sent1 - sent0) / (listeners * span),
        "encoded": encoded,
        "first_ms": [pct(got, 0.5) * 1e3, pct(got, 0.95) * 1e3, len(got), probes],
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]
    out = [
        "| tick on | listeners | loop lag p50 / p99 / max ms | max lag vs first row "
        "| CPU ms / listener-s | pkts / listener-s | mixes encoded "
        "| first packet p50 / p95 ms (got) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lag = " / ".join(f"{v:.1f}" for v in r["lag_ms"])
        f = r["first_ms"]
        ratio = r["lag_ms"][2] / base["lag_ms"][2] if base["lag_ms"][2] else float("nan")
        out.append(
            f"| {r['mode']} | {r['listeners']} | {lag} | {ratio:.2f} "
            f"| {r['cpu_ms']:.2f} | {r['pps']:.1f} | {r['encoded']} "
            f"| {f[0]:.0f} / {f[1]:.0f} ({f[2]} of {f[3]}) |"
        )
    return "\n".join(out) + "\n"


async def main(args: argparse.Namespace) -> None:
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink_sock.bind(("127.0.0.1", 0))  # never read: the kernel drops what overflows
    sink = sink_sock.getsockname()
    rows = []
    for _ in range(args.rounds):
        for mode in args.modes.split(","):
            row = await run(mode, args.listeners, args.seconds, sink, args.probes)
            sys.stderr.write(f"{row}\n")
            rows.append(row)
    sink_sock.close()
    sys.stdout.write(table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--modes", default="loop,thread")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument(
        "--switch-interval", type=float, default=None, help="sys.setswitchinterval, seconds"
    )
    asyncio.run(main(parser.parse_args()))
