"""Audio fan-out benchmark: droproom's engine against an aiortc `MediaRelay`
baseline, with one and with three speakers, at several listener counts.

    python bench/audio_fanout.py [--listeners 50,200,500] [--speakers 1,3]
                                 [--modes droproom,loop,relay] [--window 3]
                                 [--profile DIR]

Modes: `droproom` (the rooms' ticks on the media thread), `loop` (the same
engine with the tick on the event loop: the baseline before issue 15's
offloop work), `relay` (aiortc's `MediaRelay`, one encoder per listener).

The server runs in a child process (its CPU is what we measure); publishers
and listeners are real aiortc peers in this process, on loopback only.
Reports server CPU per listener-second, packets sent per listener per
second, added latency (publisher send -> listener arrival of a tone onset)
and time to first packet. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from media.config import MediaConfig
from media.engine import MediaEngine
from media.ice import pre_gather, rtc_configuration
from media.session import Kind
from media.wire import RtpWire
from server.cli import gc_thresholds
from server.ports import free_port
from tests.media_helpers import LOOPBACK, TonePublisher, ToneTrack, wait_connected

ROOM = "bench"
BIG = 100  # bytes of RTP: above this a packet carries tone, below it silence
CONNECT_DEADLINE_S = 60.0
PROBES = 20  # the last listeners join one by one, to time their first packet
PROFILE_DIR: str | None = None  # --profile: py-spy's collapsed stacks of the server go here


# --- the server (child process) ----------------------------------------------
class SlotTrack(MediaStreamTrack):
    """Relay baseline: one speaker slot, fed by whichever publisher holds it."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.source: MediaStreamTrack | None = None
        self.idle = ToneTrack(0, amplitude=0.0)

    async def recv(self) -> Any:
        return await (self.source or self.idle).recv()


class GcWatch:
    """The server's garbage-collector pauses (they stop every thread)."""

    def __init__(self) -> None:
        self.total_s = self.max_s = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.total_s += took
        self.max_s = max(self.max_s, took)


class LagWatch:
    """How late the server's event loop wakes a 5 ms sleep (its lag)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.answers: list[float] = []  # engine.listen's own time, on the server
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            self.lags.append(loop.time() - due)

    def take(self) -> dict[str, float]:
        lags, self.lags = self.lags, []
        answers, self.answers = self.answers, []
        return {
            "lag_p50": pct(lags, 0.5),
            "lag_p99": pct(lags, 0.99),
            "lag_max": max(lags, default=float("nan")),
            "answer_p95": pct(answers, 0.95),
        }


async def serve(mode: str, port: int, speakers: int) -> None:
    gc.set_threshold(*gc_thresholds())  # as `droproom serve` runs
    watch = GcWatch()
    lag = LagWatch()
    config = MediaConfig(
        data_dir=Path(tempfile.mkdtemp()),
        ice_hosts=("127.0.0.1",),
        record=False,
        media_thread=mode != "loop",
    )
    if mode == "loop":
        mode = "droproom"
    engine = MediaEngine(config)
    relay = MediaRelay()
    slots = [SlotTrack() for _ in range(speakers)]
    relay_pcs: list[RTCPeerConnection] = []
    counter = iter(range(10**9))
    wires: list[RtpWire] = []
    closed: collections.Counter[str] = collections.Counter()  # why listener sessions ended
    close = engine.close

    async def counted_close(session_id: str, reason: str = "closed") -> bool:
        closed[reason] += 1
        return await close(session_id, reason)

    engine.close = counted_close  # type: ignore[method-assign]

    async def answer_relay(pc: RTCPeerConnection, sdp: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pre_gather(pc, config)
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def pub(request: web.Request) -> web.Response:
        i, sdp = int(request.match_info["i"]), await request.text()
        if mode == "droproom":
            _, answer = await engine.publish(ROOM, f"s{i}", sdp)
            return web.Response(text=answer)
        pc = RTCPeerConnection(rtc_configuration(config))
        relay_pcs.append(pc)
        pc.on("track", lambda track: setattr(slots[i], "source", track))
        return web.Response(text=await answer_relay(pc, sdp))

    async def sub(request: web.Request) -> web.Response:
        sdp, n = await request.text(), next(counter)
        if mode == "droproom":
            started = time.perf_counter()
            session, answer = await engine.listen(ROOM, f"l{n}", sdp)
            lag.answers.append(time.perf_counter() - started)
            media = engine.rooms[ROOM]
            wires.append(media.listeners[session.id][1].wire)  # type: ignore[arg-type]
            return web.Response(text=answer)
        pc = RTCPeerConnection(rtc_configuration(config))
        relay_pcs.append(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for slot in slots:
            pc.addTrack(relay.subscribe(slot))
        await pre_gather(pc, config)
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(text=str(pc.localDescription.sdp))

    def sent() -> int:
        if mode == "droproom":  # closed sessions' wires too: a count that never goes back
            return sum(w.packets for w in wires)
        return sum(
            t.sender._RTCRtpSender__packet_count  # type: ignore[attr-defined]
            for pc in relay_pcs
            for t in pc.getTransceivers()
            if t.sender.track is not None
        )

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "cpu": time.process_time(),
                "sent": sent(),
                "gc_s": watch.total_s,
                "gc_max_s": watch.max_s,
                "late": engine.ticker.late if engine.ticker else None,
                "listening": engine.session_counts()[Kind.LISTEN],
                "closed": dict(closed),
                **lag.take(),
            }
        )

    app = web.Application()
    app.add_routes([web.post("/pub/{i}", pub), web.post("/sub", sub), web.get("/stats", stats)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await engine.aclose()


# --- the clients (this process) ----------------------------------------------
@dataclass
class LightListener:
    """A listener that only counts packets (no decoding) and notes tone onsets."""

    pc: RTCPeerConnection
    t_post: float = 0.0
    t_answer: float = 0.0
    t_first: float | None = None
    t_ice: float | None = None  # ICE completed
    t_dtls: float | None = None  # DTLS done (connectionState "connected")
    packets: int = 0
    onsets: list[float] = field(default_factory=list)
    _last_big: bool = False

    def tap(self, receiver: Any, watch: bool) -> None:
        clock = time.perf_counter

        async def handle(packet: Any, arrival_time_ms: int) -> None:
            now = clock()
            if self.t_first is None:
                self.t_first = now
            self.packets += 1
            if watch:
                big = len(packet.payload) > BIG - 20  # mixed silence is ~55 bytes, tone ~100+
                if big and not self._last_big:
                    self.onsets.append(now)
                self._last_big = big

        receiver._handle_rtp_packet = handle


async def post(http: aiohttp.ClientSession, url: str, sdp: str) -> str:
    async with http.post(url, data=sdp, headers={"Content-Type": "application/sdp"}) as r:
        r.raise_for_status()
        return await r.text()


async def new_listener(http: aiohttp.ClientSession, base: str, tracks: int) -> LightListener:
    pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
    lis = LightListener(pc)

    @pc.on("iceconnectionstatechange")
    def on_ice() -> None:
        if pc.iceConnectionState == "completed" and lis.t_ice is None:
            lis.t_ice = time.perf_counter()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and lis.t_dtls is None:
            lis.t_dtls = time.perf_counter()

    for k in range(tracks):
        lis.tap(pc.addTransceiver("audio", direction="recvonly").receiver, watch=k == 0)
    await pre_gather(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    lis.t_post = time.perf_counter()
    answer = await post(http, base + "/sub", pc.localDescription.sdp)
    lis.t_answer = time.perf_counter()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return lis


def tap_sends(pub: TonePublisher, onsets: list[float]) -> None:
    dtls = pub.pc.getTransceivers()[0].sender.transport
    original = dtls._send_rtp
    state = {"big": False}

    async def send(data: bytes) -> None:
        big = len(data) > BIG and (data[1] & 0x7F) < 128 and not (192 <= data[1] <= 223)
        if big and not state["big"]:
            onsets.append(time.perf_counter())
        state["big"] = big
        await original(data)

    dtls._send_rtp = send  # type: ignore[method-assign]


async def toggler(track: ToneTrack) -> None:
    while True:  # tone on and off, so the listeners see onsets to time
        track.silent = False
        await asyncio.sleep(0.3)
        track.silent = True
        await asyncio.sleep(0.3)


async def start_speakers(
    http: aiohttp.ClientSession,
    base: str,
    speakers: int,
    pubs: list[TonePublisher],
    tasks: list[asyncio.Task[None]],
) -> list[float]:
    """`speakers` tone publishers on `base` (added to `pubs` as they connect),
    silent but the first, whose tone goes on and off (a task added to
    `tasks`); returns the list its tone onsets' send times are added to."""
    send_onsets: list[float] = []
    for i in range(speakers):
        url = f"{base}/pub/{i}"

        async def exchange(sdp: str, url: str = url) -> str:
            return await post(http, url, sdp)

        pub = await TonePublisher.start(440 + 110 * i, exchange)
        await wait_connected(pub.pc)
        pub.track.silent = True
        pubs.append(pub)
    tap_sends(pubs[0], send_onsets)
    tasks.append(asyncio.create_task(toggler(pubs[0].track)))
    return send_onsets


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def run_case(mode: str, speakers: int, listeners: int, window: float) -> dict[str, Any]:
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "serve",
        mode,
        str(port),
        str(speakers),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    await child.stdout.readline()
    base = f"http://127.0.0.1:{port}"
    pubs: list[TonePublisher] = []
    lis: list[LightListener] = []
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {"mode": mode, "speakers": speakers, "listeners": listeners}
    try:
        async with aiohttp.ClientSession() as http:
            send_onsets = await start_speakers(http, base, speakers, pubs, tasks)
            gate = asyncio.Semaphore(16)
            tracks = speakers if mode == "relay" else 1
            crowd = max(0, listeners - PROBES)

            async def join() -> None:
                async with gate:
                    lis.append(await new_listener(http, base, tracks))

            started = time.perf_counter()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_DEADLINE_S):
                    await asyncio.gather(*(join() for _ in range(crowd)))
                    while any(x.t_first is None for x in lis):
                        await asyncio.sleep(0.1)
            result["connect_s"] = time.perf_counter() - started
            await asyncio.sleep(1.0)
            # time to first packet: newcomers one at a time, the crowd connected
            probes: list[LightListener] = []
            for _ in range(listeners - crowd):
                probe = await new_listener(http, base, tracks)
                probes.append(probe)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        while probe.t_first is None:
                            await asyncio.sleep(0.002)
                await asyncio.sleep(0.05)
            lis.extend(probes)
            ttfp = [x.t_first - x.t_post for x in probes if x.t_first is not None]
            result["ttfp_ms"] = (pct(ttfp, 0.5) * 1e3, pct(ttfp, 0.95) * 1e3)
            answer = [x.t_answer - x.t_post for x in probes]
            result["answer_ms"] = (pct(answer, 0.5) * 1e3, pct(answer, 0.95) * 1e3)
            # where the first packet's time goes: answer, then ICE, DTLS, first RTP
            done = [x for x in probes if x.t_ice and x.t_dtls and x.t_first]
            result["phases_ms"] = [
                pct([f(x) for x in done], 0.5) * 1e3
                for f in (
                    lambda x: x.t_answer - x.t_post,
                    lambda x: x.t_ice - x.t_answer,
                    lambda x: x.t_dtls - x.t_ice,
                    lambda x: x.t_first - x.t_dtls,
                )
            ]
            result["ttfp_after"] = crowd
            result["connected"] = sum(1 for x in lis if x.t_first is not None)
            await asyncio.sleep(1.5)
            async with http.get(base + "/stats") as r:
                s0 = json.loads(await r.text())
            c0 = [x.packets for x in lis]
            t0 = time.perf_counter()
            spy = await start_profile(child.pid, window, mode, speakers, listeners)
            await asyncio.sleep(window)
            if spy is not None:
                await spy.wait()
            async with http.get(base + "/stats") as r:
                s1 = json.loads(await r.text())
            t1 = time.perf_counter()
            span, n = t1 - t0, max(1, len(lis))
            streams = tracks
            result["cpu_ms_per_listener_s"] = (s1["cpu"] - s0["cpu"]) * 1e3 / (n * span)
            result["sent_pps"] = (s1["sent"] - s0["sent"]) / (n * span * streams)
            result["recv_pps"] = sum(x.packets - c for x, c in zip(lis, c0, strict=False)) / (
                n * span * streams
            )
            lat = latencies(send_onsets, [o for x in lis for o in x.onsets if t0 <= o <= t1])
            result["latency_ms"] = (pct(lat, 0.5) * 1e3, pct(lat, 0.95) * 1e3)
            result["gc_ms_per_s"] = (s1["gc_s"] - s0["gc_s"]) * 1e3 / span
            result["gc_max_ms"] = s1["gc_max_s"] * 1e3
            result["listening"] = (s0["listening"], s1["listening"])
            result["closed"] = s1["closed"]
            result["lag_ms"] = [s1[k] * 1e3 for k in ("lag_p50", "lag_p99", "lag_max")]
            result["server_answer_p95_ms"] = s0["answer_p95"] * 1e3
    finally:
        for task in tasks:
            task.cancel()
        for pc in [x.pc for x in lis] + [p.pc for p in pubs]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)
        child.terminate()
        await child.wait()
    return result


async def start_profile(
    pid: int, window: float, mode: str, speakers: int, listeners: int
) -> asyncio.subprocess.Process | None:
    """With --profile DIR: py-spy samples the server over the window (collapsed stacks)."""
    if PROFILE_DIR is None:
        return None
    out = Path(PROFILE_DIR) / f"{mode}-{speakers}x{listeners}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    return await asyncio.create_subprocess_exec(
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(window))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def latencies(sends: list[float], arrivals: list[float]) -> list[float]:
    out = []
    for a in arrivals:
        before = [s for s in sends if s <= a]
        if before and a - before[-1] < 0.25:
            out.append(a - before[-1])
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| server | speakers | listeners (connected) | CPU ms / listener-s "
        "| pkts sent / listener-s | pkts recv / listener-s "
        "| added latency p50 / p95 ms | first packet p50 / p95 ms "
        "| first packet p50: answer / ICE / DTLS / RTP ms "
        "| server loop lag p50 / p99 / max ms |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in rows:
        ttfp = f"{r['ttfp_ms'][0]:.0f} / {r['ttfp_ms'][1]:.0f} ({r['ttfp_after']} others on)"
        lines.append(
            f"| {r['mode']} | {r['speakers']} | {r['listeners']} ({r['connected']}) "
            f"| {r['cpu_ms_per_listener_s']:.2f} | {r['sent_pps']:.1f} | {r['recv_pps']:.1f} "
            f"| {r['latency_ms'][0]:.1f} / {r['latency_ms'][1]:.1f} | {ttfp} "
            f"| {' / '.join(f'{v:.0f}' for v in r['phases_ms'])} "
            f"| {' / '.join(f'{v:.1f}' for v in r['lag_ms'])} |"
        )
    return head + "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    global PROBES, PROFILE_DIR
    PROBES, PROFILE_DIR = args.probes, args.profile
    rows = []
    for mode in args.modes.split(","):
        for speakers in [int(s) for s in args.speakers.split(",")]:
            for n in [int(x) for x in args.listeners.split(",")]:
                if mode == "relay" and n > args.relay_max:
                    continue
                row = await run_case(mode, speakers, n, args.window)
                sys.stderr.write(json.dumps(row) + "\n")
                rows.append(row)
    sys.stdout.write(table(rows))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", default="50,200,500")
    parser.add_argument("--speakers", default="1,3")
    parser.add_argument("--modes", default="droproom,relay")
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--relay-max", type=int, default=500)
    parser.add_argument("--probes", type=int, default=PROBES)
    parser.add_argument("--profile", default=None, help="a directory for py-spy's stacks")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main(parser.parse_args()))
