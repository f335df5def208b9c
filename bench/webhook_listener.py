"""What the outbound-webhook listener adds to every emit of a live drop's
`drop:updated` (the event a drop rush emits at every cart move): emits per
second with the listener taken out (baseline), for a room whose owner has
no endpoint, for a room whose owner has an endpoint wanting
`drop.live` (enqueued once, then skipped from the listener's memory: an
order or drop event is looked at once per process), and for a new drop at
every emit (the reads every time), alternating rounds in one run. No
Socket.IO client is connected, so the emit itself is cheap and the ratio is
the worst case.

    python bench/webhook_listener.py [--emits 3000] [--rounds 3]

Server and embedded redis-server run here (one machine, loopback). Prints a
Markdown table: emits per second and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accounts import hooks
from commerce.events import DROP_UPDATED
from kernel.events import Event, to_room
from rooms import lifecycle
from server.appkeys import EMITTER, ROOMS, SCHEDULER
from server.hooks.resources import HOOKS
from server.hooks.sources import Sources
from tests.harness import Harness, RedisServer, start_server, stop_server
from tests.harness import test_settings as make_settings

BASELINE = "listener taken out (baseline)"
FRESH = "a drop first seen at every emit (no endpoint)"
CASES = {
    BASELINE: ("bench-hooks-none", "acct_nobody"),
    "owner has no endpoint": ("bench-hooks-none", "acct_nobody"),
    "owner's endpoint wants drop.live": ("bench-hooks-one", "acct_hooked"),
    FRESH: ("bench-hooks-none", "acct_nobody"),
}


def _drop(room: str, drop_id: str = "d1") -> Event:
    drop = {"id": drop_id, "product_id": "tee", "state": "live", "remaining": 3, "stock": 5}
    return to_room(room, DROP_UPDATED, {"drop": drop})


async def _rate(server: Harness, room: str, n: int, fresh: bool) -> float:
    emitter = server.app[EMITTER]
    events = [_drop(room, f"d{i}-{time.monotonic_ns()}" if fresh else "d1") for i in range(n)]
    started = time.perf_counter()
    for event in events:
        await emitter.emit([event])
    return n / (time.perf_counter() - started)


async def _setup(server: Harness) -> None:
    now = server.app[SCHEDULER].clock()
    for room, owner in set(CASES.values()):
        await lifecycle.create(server.app[ROOMS], {"id": room, "title": room}, now, owner)
    endpoint = hooks.Endpoint(
        hooks.new_id(),
        "acct_hooked",
        "https://hooks.example/x",
        (hooks.DROP_LIVE,),
        "whsec_AA",
        now,
    )
    await server.app[HOOKS].add(endpoint)


async def main(emits: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        server = await start_server(make_settings(Path(tmp) / "data", redis.url))
        try:
            await _setup(server)
            emitter = server.app[EMITTER]
            listeners = list(emitter.listeners)
            without = [
                f for f in listeners if not isinstance(getattr(f, "__self__", None), Sources)
            ]
            rates: dict[str, list[float]] = {name: [] for name in CASES}
            for _ in range(rounds):
                for name, (room, _) in CASES.items():
                    emitter.listeners = without if name == BASELINE else listeners
                    rates[name].append(await _rate(server, room, emits, name == FRESH))
            emitter.listeners = listeners
        finally:
            await stop_server(server)
            redis.stop()
    base = statistics.median(rates[BASELINE])
    print(f"| drop:updated emit | emits/s (median of {rounds}) | ratio |")
    print("| --- | --- | --- |")
    for name, found in rates.items():
        median = statistics.median(found)
        print(f"| {name} | {median:,.0f} | {median / base:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emits", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.emits, args.rounds))
