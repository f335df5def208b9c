"""The audio relay's publishing cost (issue 15): what the owner of R rooms
spends in CPU to publish every encoded packet of its rooms to the edges,
one packet per round trip against everything queued since the last round
trip in one pipeline (`Relay.batch`), measured in the same run.

    python bench/relay_publish.py [--rooms 1,10,50] [--seconds 5]

The relay is server/audio/edges.py's `Relay` on a redis-server of the
bench's own (unix socket), fed as the media ticker feeds it: one 80-byte
Opus-sized packet per owned room every 20 ms. One subscriber (a plain
redis-py pub/sub in a child process, like an edge) listens to every room,
so Redis does a real fan-out. Prints a Markdown table: packets published,
round trips, the publisher's CPU per 1,000 packets and the Redis server's,
and the ratio of the batched CPU to one-by-one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.fanout import Feed
from media.packets import SharedPacket
from server.audio.edges import RELAY_BATCH, Relay
from server.relay.transport import transport_for
from tests.harness import RedisServer

TICK_S = 0.02
PAYLOAD = bytes(80)


class _Media:
    def __init__(self) -> None:
        self.feeds = {None: Feed(None, time.monotonic)}


class _Engine:
    """What the relay reads of the media engine: the rooms and their feed."""

    def __init__(self, rooms: int) -> None:
        self.rooms = {f"room{i}": _Media() for i in range(rooms)}


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SUBSCRIBER = """
import sys, redis
r = redis.Redis(unix_socket_path=sys.argv[1])
p = r.pubsub(ignore_subscribe_messages=True)
p.psubscribe("droproom:media:*")
print("ready", flush=True)
n = 0
for message in p.listen():
    n += 1
"""


async def run_case(redis: RedisServer, rooms: int, batch: int, seconds: float) -> dict[str, Any]:
    sub = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBSCRIBER, str(redis.socket), stdout=asyncio.subprocess.PIPE
    )
    assert sub.stdout is not None and (await sub.stdout.readline()).strip() == b"ready"
    engine = _Engine(rooms)
    transport = transport_for(redis.url, cluster=False)

    async def ignore(raw: bytes) -> None:
        pass

    await transport.open(ignore)
    relay = Relay(transport, engine, time.time, batch=batch)  # type: ignore[arg-type]
    relay.start()
    for i, room in enumerate(engine.rooms):
        relay.own(room, i + 1)
    taps = [media.feeds[None].taps[0] for media in engine.rooms.values()]
    loop = asyncio.get_running_loop()
    cpu0, redis0, t0 = time.process_time(), cpu_of(redis.process.pid), loop.time()
    ticks = int(seconds / TICK_S)
    for n in range(ticks):
        packet = SharedPacket(PAYLOAD, n * 960, loop.time())
        for tap in taps:
            tap(packet)
        await asyncio.sleep(max(0.0, t0 + (n + 1) * TICK_S - loop.time()))
    while relay._queue:  # the bench waits for the last packets
        await asyncio.sleep(0.005)
    cpu = time.process_time() - cpu0
    redis_cpu = cpu_of(redis.process.pid) - redis0
    published, trips, dropped = relay.published, relay.round_trips, relay.dropped
    await relay.aclose()
    await transport.close()
    sub.terminate()
    await sub.wait()
    return {
        "rooms": rooms,
        "batch": batch,
        "published": published,
        "expected": ticks * rooms,
        "round_trips": trips,
        "dropped": dropped,
        "cpu_ms_per_k": cpu * 1e6 / max(1, published),
        "redis_ms_per_k": redis_cpu * 1e6 / max(1, published),
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| rooms | per round trip | packets (expected) | round trips | dropped "
        "| relay CPU ms / 1k packets | Redis CPU ms / 1k packets | relay CPU vs one-by-one |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    base: dict[int, float] = {}
    for r in rows:
        if r["batch"] == 1:
            base[r["rooms"]] = r["cpu_ms_per_k"]
        ratio = r["cpu_ms_per_k"] / base[r["rooms"]] if r["rooms"] in base else float("nan")
        label = "one" if r["batch"] == 1 else f"up to {r['batch']}"
        out.append(
            f"| {r['rooms']} | {label} | {r['published']} ({r['expected']}) | {r['round_trips']} "
            f"| {r['dropped']} | {r['cpu_ms_per_k']:.1f} | {r['redis_ms_per_k']:.1f} "
            f"| {ratio:.2f}x |"
        )
    return "\n".join(out) + "\n"


async def main(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        try:
            for rooms in [int(x) for x in args.rooms.split(",")]:
                for batch in (1, RELAY_BATCH):
                    rows.append(await run_case(redis, rooms, batch, args.seconds))
                    sys.stderr.write(f"{rows[-1]}\n")
        finally:
            redis.stop()
    sys.stdout.write(table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", default="1,10,50")
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
