"""Reminder fan-out benchmark: how long one reminder sweep takes to queue a
mail for every follower of a room, against the outbox's bare `enqueue` of
the same number of mails in the same run (no follower read, no account
read, no dedupe mark), and how long a second sweep over the same episode
takes (every mark already there: nothing is queued twice).

    python bench/reminder_fanout.py [--followers 500,2000]

The server runs in this process on a redis-server of its own (unix socket,
stopped by its pid at the end); its scheduler is stopped so only the
measured work runs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from accounts import keys as mail_keys
from accounts.mail import episode_reminder_mail
from rooms import episodes, follows, keys
from server.accounts.reminders import sweep
from server.accounts.resources import OUTBOX
from server.appkeys import ACCOUNTS, ROOMS, SCHEDULER
from tests.harness import RedisServer, start_server, stop_server
from tests.harness import test_settings as make_settings

LEAD_S = 900


async def _clear_outbox(redis: Any) -> None:
    ids = await redis.zrange(mail_keys.OUTBOX, 0, -1)
    if ids:
        await redis.delete(*[mail_keys.mail(i) for i in ids])
    await redis.delete(mail_keys.OUTBOX)


async def one_size(n: int, data_dir: Path, redis_url: str) -> tuple[float, float, float]:
    server = await start_server(make_settings(data_dir, redis_url, reminder_lead_s=LEAD_S))
    try:
        app = server.app
        await app[SCHEDULER].stop()
        store, now = app[ROOMS], time.time()
        room = f"bench{n}"
        await server.create_room(id=room, title="Bench room")
        for i in range(n):
            account = await app[ACCOUNTS].get_or_create(f"f{i}@example.com", now)
            await follows.follow(store, room, account.id)

        mail = episode_reminder_mail("x@example.com", "Bench room", "Ep", now + 960, "http://x")
        started = time.perf_counter()
        for _ in range(n):
            await app[OUTBOX].enqueue(mail, now)
        baseline = time.perf_counter() - started
        await _clear_outbox(store.redis)

        ep, _ = await episodes.create(
            store, room, {"title": "Ep", "starts_at": int(now) + 960}, now, LEAD_S
        )
        started = time.perf_counter()
        await sweep(app, now + 61)
        first = time.perf_counter() - started
        queued = await app[OUTBOX].waiting()
        assert queued == n, (queued, n)
        await store.redis.zadd(keys.EPISODE_REMINDERS, {f"{room}|{ep.id}": now})
        started = time.perf_counter()
        await sweep(app, now + 61)
        again = time.perf_counter() - started
        assert await app[OUTBOX].waiting() == n  # nothing queued twice
        return baseline, first, again
    finally:
        await stop_server(server)


async def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        try:
            print("| followers | bare enqueue s | reminder sweep s | ratio | mails/s | again s |")
            print("| ---: | ---: | ---: | ---: | ---: | ---: |")
            for n in sizes:
                redis.client().flushall()
                base, first, again = await one_size(n, Path(tmp) / f"data{n}", redis.url)
                print(
                    f"| {n} | {base:.3f} | {first:.3f} | {first / base:.2f} | "
                    f"{n / first:.0f} | {again:.3f} |"
                )
        finally:
            redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--followers", default="500,2000")
    args = parser.parse_args()
    asyncio.run(main([int(x) for x in args.followers.split(",")]))
