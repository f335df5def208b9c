"""Issue 15's audio benchmark, measured at the server: 3 speakers and 500
listeners in one process, cascaded over two processes, over three loopback
nodes, and aiortc's `MediaRelay` (wave 1's baseline).

    python bench/audio_bench.py [--listeners 500] [--speakers 3]
                                [--modes single,cascade,nodes3,relay]
                                [--crowds 5] [--window 5] [--profile DIR]
    python bench/audio_bench.py top DIR/single-3x500.txt   # a profile, summed

Why another bench: `bench/audio_fanout.py` and `bench/audio_cascade.py` keep
every listener peer in their own process; at 500 on 2 cores those peers
stopped answering ICE consent and the servers reaped them, so the bench
measured itself. Here:

- the servers are the children of those benches (their code, imported):
  `single` = one owner process; `cascade` = an owner and one edge process
  sharing a redis-server (the owner relays its encoded feed, the edge fans
  it out: server/audio/edges.py's `Relay` / `EdgeFeeds`, the path two
  workers or two loopback nodes take); `nodes3` = the owner and two edges
  (one more node); `relay` = `MediaRelay`, one encoder per listener;
- the crowd of light listeners (ICE, DTLS, SRTP, a packet counter; no
  decoding) is spread over `--crowds` child processes of this script;
- this process keeps only the publishers, 10 real receivers that time the
  first speaker's tone onsets (publisher send -> arrival), and the 20
  newcomers that time their first packet once the crowd is connected;
- the figures come from the servers: packets written per listener-second
  (their wires' counters), the departure delay of every packet (mixer ->
  wire send, `media.wire.Departures`; on an edge: its arrival -> send, the
  relay's owner -> edge time is its own column), and CPU per
  listener-second (the servers' and Redis's pids, from /proc).

Prints a Markdown table; each case is bounded (60 s to connect, the window,
about 1.5 minutes in all).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import audio_fanout
from audio_cascade import Redis, cpu_of, start_child
from audio_fanout import (
    LightListener,
    free_port,
    latencies,
    new_listener,
    pct,
    start_profile,
    start_speakers,
)

from media.wire import percentile_ms
from tests.media_helpers import TonePublisher

WATCHERS = 10  # real receivers in this process timing tone onsets
PROBES = 20  # newcomers timing their first packet, the crowd connected
CONNECT_DEADLINE_S = 60.0
HEALTHY_PPS = 45.0  # a listener getting fewer packets a second is counted as short


# --- a crowd of light listeners (child process) ------------------------------
async def crowd(bases: list[str], count: int, offset: int, tracks: int) -> None:
    """Joins `count` light listeners (listener k on `bases[(offset + k) %
    len]`), then answers `count` on stdin with every listener's packets."""
    lis: list[LightListener] = []
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as http:

        async def join(k: int) -> None:
            async with gate:
                base = bases[(offset + k) % len(bases)]
                with contextlib.suppress(Exception):
                    lis.append(await new_listener(http, base, tracks))

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_DEADLINE_S):
                await asyncio.gather(*(join(k) for k in range(count)))
                while any(x.t_first is None for x in lis):
                    await asyncio.sleep(0.1)
        print(json.dumps({"joined": len(lis)}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if line.strip() != "count":
                break
            print(json.dumps({"packets": [x.packets for x in lis]}), flush=True)
        for x in lis:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(x.pc.close(), 2)


class Crowd:
    """This side of one crowd child."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, bases: list[str], count: int, offset: int, tracks: int) -> Crowd:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "crowd",
            ",".join(bases),
            str(count),
            str(offset),
            str(tracks),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        return dict(json.loads(await self.proc.stdout.readline()))

    async def packets(self) -> list[int]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"count\n")
        await self.proc.stdin.drain()
        return list((await self.read())["packets"])

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"quit\n")
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 10)
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


# --- the servers --------------------------------------------------------------
async def start_relay(speakers: int) -> tuple[asyncio.subprocess.Process, str]:
    """`bench/audio_fanout.py`'s MediaRelay server."""
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        audio_fanout.__file__,
        "serve",
        "relay",
        str(port),
        str(speakers),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    await child.stdout.readline()
    return child, f"http://127.0.0.1:{port}"


async def start_servers(
    mode: str, speakers: int
) -> tuple[list[asyncio.subprocess.Process], list[str], Redis | None]:
    if mode == "relay":
        child, base = await start_relay(speakers)
        return [child], [base], None
    edges = {"single": 0, "cascade": 1, "nodes3": 2}[mode]
    redis = Redis() if edges else None
    url = redis.url if redis is not None else ""
    children, bases = [], []
    for role in ["owner"] + ["edge"] * edges:
        child, base = await start_child(role, url)
        children.append(child)
        bases.append(base)
    return children, bases, redis


# --- one case -----------------------------------------------------------------
async def run_case(
    mode: str, speakers: int, listeners: int, crowds: int, window: float
) -> dict[str, Any]:
    children, bases, redis = await start_servers(mode, speakers)
    tracks = speakers if mode == "relay" else 1
    pubs: list[TonePublisher] = []
    mine: list[LightListener] = []
    groups: list[Crowd] = []
    tasks: list[asyncio.Task[None]] = []
    result: dict[str, Any] = {"mode": mode, "speakers": speakers, "listeners": listeners}
    pids = [c.pid for c in children] + ([redis.proc.pid] if redis else [])
    try:
        async with aiohttp.ClientSession() as http:
            send_onsets = await start_speakers(http, bases[0], speakers, pubs, tasks)
            await asyncio.sleep(1.5)  # the owner holds the lease and relays
            for k in range(WATCHERS):  # onto every server in turn
                mine.append(await new_listener(http, bases[k % len(bases)], tracks))
            rest = listeners - WATCHERS - PROBES
            share = [rest // crowds + (1 if j < rest % crowds else 0) for j in range(crowds)]
            started = time.perf_counter()
            offset = WATCHERS
            for n in share:
                groups.append(await Crowd.start(bases, n, offset, tracks))
                offset += n
            joined = [int((await g.read())["joined"]) for g in groups]
            result["connect_s"] = time.perf_counter() - started
            counts = [await g.packets() for g in groups]
            result["crowd_connected"] = sum(1 for c in counts for p in c if p > 0)
            on = result["crowd_connected"] + sum(1 for x in mine if x.t_first is not None)
            await asyncio.sleep(1.0)
            probes: list[LightListener] = []
            for k in range(PROBES):
                probe = await new_listener(http, bases[k % len(bases)], tracks)
                probes.append(probe)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        while probe.t_first is None:
                            await asyncio.sleep(0.002)
                await asyncio.sleep(0.05)
            ttfp = [x.t_first - x.t_post for x in probes if x.t_first is not None]
            result["ttfp_ms"] = (pct(ttfp, 0.5) * 1e3, pct(ttfp, 0.95) * 1e3)
            result["ttfp_after"] = on
            result["ttfp_got"] = len(ttfp)
            mine.extend(probes)
            result["joined"] = sum(joined) + len(mine)
            await asyncio.sleep(1.5)

            async def stats() -> list[dict[str, Any]]:
                out = []
                for base in bases:
                    async with http.get(base + "/stats") as r:
                        out.append(json.loads(await r.text()))
                return out

            mates = [g.proc.pid for g in groups]  # the crowd's share of the same cores
            s0, cpu0 = await stats(), [cpu_of(p) for p in pids]
            crowd0 = sum(cpu_of(p) for p in mates)
            c0 = [x.packets for x in mine] + [p for g in groups for p in await g.packets()]
            t0 = time.perf_counter()
            spy = await start_profile(children[0].pid, window, mode, speakers, listeners)
            await asyncio.sleep(window)
            if spy is not None:
                await spy.wait()
            s1, cpu1 = await stats(), [cpu_of(p) for p in pids]
            crowd1 = sum(cpu_of(p) for p in mates)
            c1 = [x.packets for x in mine] + [p for g in groups for p in await g.packets()]
            t1 = time.perf_counter()
            span = t1 - t0
            # received, per listener (all of them: "50 packets/s for every listener")
            rates = sorted((b - a) / (span * tracks) for a, b in zip(c0, c1, strict=True))
            result["recv_pps"] = (pct(rates, 0.5), rates[0] if rates else float("nan"))
            result["short"] = sum(1 for r in rates if r < HEALTHY_PPS)
            result["measured"] = len(rates)
            if mode == "relay":
                sent = s1[0]["sent"] - s0[0]["sent"]
                result["open"] = n = max(1, len(rates))
                result["sent_pps"] = sent / (n * span * tracks)
                result["departure_ms"] = (float("nan"),) * 3
                result["relay_ms"] = (float("nan"),) * 2
            else:
                deltas = [
                    b["sent"][k] - a["sent"][k]
                    for a, b in zip(s0, s1, strict=True)
                    for k in b["sent"]
                    if k in a["sent"]
                ]
                result["open"] = n = max(1, len(deltas))
                result["sent_pps"] = sum(deltas) / (n * span)
                hist = [sum(col) for col in zip(*(s["departures"] for s in s1), strict=True)]
                result["departure_ms"] = tuple(percentile_ms(hist, q) for q in (0.5, 0.95, 0.99))
                lag = sorted(v for s in s1[1:] for v in s["lag"])
                result["relay_ms"] = (pct(lag, 0.5) * 1e3, pct(lag, 0.95) * 1e3)
            result["closed"] = [s.get("closed") for s in s1]  # per server, by reason
            cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
            result["cpu_ms_per_listener_s"] = sum(cpu) * 1e3 / (n * span)
            result["cpu_share"] = [round(c * 1e3 / (n * span), 3) for c in cpu]
            result["cpu_cores"] = sum(cpu) / span
            result["crowd_cores"] = (crowd1 - crowd0) / span
            # per packet written: what 50 packets/s would cost once the ticks keep time
            result["cpu_us_per_packet"] = sum(cpu) * 1e6 / max(1.0, result["sent_pps"] * n * span)
            lat = latencies(send_onsets, [o for x in mine for o in x.onsets if t0 <= o <= t1])
            result["latency_ms"] = (pct(lat, 0.5) * 1e3, pct(lat, 0.95) * 1e3)
            result["load"] = os.getloadavg()[0]
    finally:
        for task in tasks:
            task.cancel()
        for g in groups:
            await g.stop()
        for pc in [x.pc for x in mine] + [p.pc for p in pubs]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 5)
        for child in children:
            child.terminate()
            await child.wait()
        if redis is not None:
            redis.stop()
    return result


def top(path: str, limit: int = 25) -> str:
    """py-spy's collapsed stacks (`--profile`) summed: per thread, then the
    frames with the most samples inclusive (anywhere on the stack) and self."""
    threads: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, frames = int(count), stack.split(";")
        total += n
        thread = frames[0]
        threads[thread] = threads.get(thread, 0) + n
        for frame in set(frames[1:]):
            inclusive[frame] = inclusive.get(frame, 0) + n
        if len(frames) > 1:
            own[frames[-1]] = own.get(frames[-1], 0) + n
    out = [f"{total} samples"]
    for title, table_ in (("threads", threads), ("inclusive", inclusive), ("self", own)):
        out.append(f"-- {title}")
        for frame, n in sorted(table_.items(), key=lambda kv: -kv[1])[:limit]:
            out.append(f"{100 * n / max(1, total):5.1f}%  {frame}")
    return "\n".join(out) + "\n"


NAMES = {
    "single": "one process",
    "cascade": "cascade: owner + 1 edge process",
    "nodes3": "3 loopback nodes: owner + 2 edges",
    "relay": "MediaRelay (wave 1)",
}


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| servers | listeners (joined, open at the server) | pkts sent / listener-s (server) "
        "| pkts recv / listener-s p50 / min (short) | departure mixer->wire p50 / p95 / p99 ms "
        "| relay owner->edge p50 / p95 ms | added latency p50 / p95 ms (10 receivers) "
        "| CPU ms / listener-s (per pid) | CPU us / packet | cores: servers / crowd "
        "| first packet p50 / p95 ms (others on) | load |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines = []
    for r in rows:
        dep = " / ".join(f"{v:.0f}" for v in r["departure_ms"])
        relay = " / ".join(f"{v:.1f}" for v in r["relay_ms"])
        share = ", ".join(f"{v:.2f}" for v in r["cpu_share"])
        lines.append(
            f"| {NAMES[r['mode']]} | {r['listeners']} ({r['joined']}, {r['open']}) "
            f"| {r['sent_pps']:.1f} | {r['recv_pps'][0]:.1f} / {r['recv_pps'][1]:.1f} "
            f"({r['short']} of {r['measured']} < {HEALTHY_PPS:.0f}) | {dep} | {relay} "
            f"| {r['latency_ms'][0]:.1f} / {r['latency_ms'][1]:.1f} "
            f"| {r['cpu_ms_per_listener_s']:.2f} ({share}) | {r['cpu_us_per_packet']:.1f} "
            f"| {r['cpu_cores']:.2f} / {r['crowd_cores']:.2f} "
            f"| {r['ttfp_ms'][0]:.0f} / {r['ttfp_ms'][1]:.0f} ({r['ttfp_after']}) "
            f"| {r['load']:.1f} |"
        )
    return head + "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    audio_fanout.PROFILE_DIR = args.profile
    rows = []
    for mode in args.modes.split(","):
        for n in [int(x) for x in args.listeners.split(",")]:
            row = await run_case(mode, args.speakers, n, args.crowds, args.window)
            sys.stderr.write(json.dumps(row) + "\n")
            rows.append(row)
            sys.stdout.write(table(rows[-1:]))  # as it comes: a case may be the last in time
    sys.stdout.write("\n" + table(rows))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if len(sys.argv) > 1 and sys.argv[1] == "crowd":
        bases, count, offset, tracks = sys.argv[2:6]
        asyncio.run(crowd(bases.split(","), int(count), int(offset), int(tracks)))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "top":  # a --profile file, summed
        sys.stdout.write(top(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listeners", default="500")
    parser.add_argument("--speakers", type=int, default=3)
    parser.add_argument("--modes", default="single,cascade,nodes3,relay")
    parser.add_argument("--crowds", type=int, default=5, help="child processes of listeners")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--profile", default=None, help="a directory for py-spy's stacks")
    parsed = parser.parse_args()
    if parsed.profile:
        Path(parsed.profile).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(parsed))
