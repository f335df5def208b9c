"""What the sign-out check costs an HTTP route: `GET /api/v1/rooms/{room}`
with a room token from `/join` (the revocation middleware reads the
account's `gen` from Redis) against an admin-minted room token of the same
room (no lookup), alternating rounds in one run.

    python bench/signout_check.py [--requests 2000] [--rounds 3] [--concurrency 20]

Server, embedded redis-server and client run here (one machine, loopback).
Prints a Markdown table: requests per second and the ratio to the baseline.
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

import aiohttp

from server.appkeys import ACCOUNTS, SCHEDULER
from server.tokens import mint_account
from tests.harness import Harness, RedisServer, start_server, stop_server
from tests.harness import test_settings as make_settings

ROOM = "bench-signout"


async def _rate(server: Harness, token: str, n: int, concurrency: int) -> float:
    url = f"{server.url}/api/v1/rooms/{ROOM}"
    headers = {"Authorization": f"Bearer {token}"}
    left = n

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()

    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        return n / (time.perf_counter() - started)


async def main(requests: int, rounds: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        server = await start_server(make_settings(Path(tmp) / "data", redis.url))
        try:
            await server.create_room(id=ROOM)
            now = server.app[SCHEDULER].clock()
            account = await server.app[ACCOUNTS].get_or_create("bench@example.com", now)
            token = mint_account(
                server.settings.secret, account_id=account.id, name="b", gen=0, now=now
            )
            _, joined = await server.request("POST", f"/api/v1/rooms/{ROOM}/join", token=token)
            tokens = {
                "admin-minted (baseline)": server.token(ROOM, "alice"),
                "/join": joined["token"],
            }
            rates: dict[str, list[float]] = {name: [] for name in tokens}
            for _ in range(rounds):
                for name, t in tokens.items():
                    rates[name].append(await _rate(server, t, requests, concurrency))
        finally:
            await stop_server(server)
            redis.stop()
    base = statistics.median(rates["admin-minted (baseline)"])
    print(f"| token | requests/s (median of {rounds}) | ratio |")
    print("| --- | --- | --- |")
    for name, found in rates.items():
        median = statistics.median(found)
        print(f"| {name} | {median:.0f} | {median / base:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds, args.concurrency))
