"""Replay moments: reading a recording's moments from a long room log with
XRANGE bounded by the recording's window (what the replays route does)
against reading the whole stream and filtering (the baseline), measured in
the same run on the same data.

    python bench/replay_moments.py [--entries 20000,100000,300000] [--window 300]
                                   [--repeat 5]

The room log is filled with a day of entries (chat, votes, pins, drops,
polls, evenly spread; stream ids at their times); each run asks for the
moments of one `--window`-second recording in the middle of the day.
Prints a Markdown table: median time per read, the ratio, entries read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as aioredis

from rooms import keys
from rooms.moments import LOG_SLACK_S, Window, moments
from rooms.store import RoomStore
from tests.harness import RedisServer

ROOM = "bench"
DAY_S = 24 * 3600.0
START = 1_800_000_000.0
KINDS = [
    ("chat.sent", {"text": "hello"}),
    ("poll.voted", {"poll": "p1", "option": 0}),
    ("chat.sent", {"text": "nice"}),
    ("slot.pinned", {"product_id": "tee", "note": "", "slot": 1}),
    ("presence.joined", {"identity": "x"}),
    ("drop.live", {"drop_id": "d1"}),
    ("poll.created", {"id": "p1", "question": "Colour?", "options": ["A", "B"]}),
]


async def fill(redis: aioredis.Redis, n: int) -> None:
    step = DAY_S / n
    pipe = redis.pipeline(transaction=False)
    for i in range(n):
        ts = START + i * step
        etype, data = KINDS[i % len(KINDS)]
        fields: dict[Any, Any] = {
            "type": etype,
            "data": json.dumps(data),
            "ts": repr(ts),
            "prev": "",
            "hash": "",
        }
        pipe.xadd(keys.log(ROOM), fields, id=f"{int(ts * 1000)}-{i}")
        if len(pipe) >= 5000:
            await pipe.execute()
    await pipe.execute()


async def bounded(store: RoomStore, window: Window) -> tuple[int, int]:
    start, end = window.opened_at - LOG_SLACK_S, window.end + LOG_SLACK_S
    entries = [e async for e in store.log_between(ROOM, start, end)]
    return len(entries), len(moments(entries, window))


async def full_scan(store: RoomStore, window: Window) -> tuple[int, int]:
    entries = [e async for e in store.log_entries(ROOM)]
    return len(entries), len(moments(entries, window))


Read = Callable[[RoomStore, Window], Awaitable[tuple[int, int]]]


async def timed(fn: Read, store: RoomStore, window: Window, repeat: int) -> tuple[float, int, int]:
    times = []
    read = found = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        read, found = await fn(store, window)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), read, found


async def main(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        try:
            redis = aioredis.Redis(unix_socket_path=str(server.socket), decode_responses=True)
            store = RoomStore(redis)
            for n in args.entries:
                await redis.delete(keys.log(ROOM))
                await fill(redis, n)
                mid = START + DAY_S / 2
                window = Window(mid, mid + 0.5, mid + args.window)
                ours = await timed(bounded, store, window, args.repeat)
                base = await timed(full_scan, store, window, args.repeat)
                assert ours[2] == base[2], "both reads must find the same moments"
                rows.append((n, ours, base))
            await redis.aclose()
        finally:
            server.stop()
    print(f"Moments of one {args.window:.0f} s recording in a day-long room log")
    print()
    print(
        "| log entries | bounded XRANGE (ms) | entries read | full scan (ms) | entries read "
        "| full scan / bounded | moments |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n, (t_ours, r_ours, found), (t_base, r_base, _) in rows:
        print(
            f"| {n} | {t_ours * 1e3:.2f} | {r_ours} | {t_base * 1e3:.1f} | {r_base} "
            f"| {t_base / t_ours:.0f}x | {found} |"
        )


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--entries", type=lambda s: [int(x) for x in s.split(",")], default=[20000, 100000]
    )
    parser.add_argument("--window", type=float, default=300.0)
    parser.add_argument("--repeat", type=int, default=5)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
