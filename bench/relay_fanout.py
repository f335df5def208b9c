"""Room events between processes: what each process decodes from Redis with
droproom's room relay (server/relay) against python-socketio's
AsyncRedisManager, measured in the same run.

P node processes (default 2) on one redis-server, each a bare
python-socketio server with the manager under test. N rooms; each node holds
one client of each of 1/P of the rooms. Each node then emits E/P events to
every room (a room's events are decided on whichever process got the
request), so every client should receive E events.

    python bench/relay_fanout.py [--rooms 100] [--emits 40] [--processes 2] [--deciders 1]

With `--deciders D` only the first D processes emit (E/D each); the others
only listen, so their CPU is what the relay costs a process to take in.

Prints a Markdown table: messages decoded per process, the process CPU
during the emits, every event delivered or not, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import socketio
from aiohttp import web

from server.relay.manager import RECEIVED, RoomRelay
from server.relay.transport import transport_for
from tests.harness import RedisServer, free_port

KINDS = ("socketio", "rooms")


class CountingRedisManager(socketio.AsyncRedisManager):
    """python-socketio's manager, counting what it decodes (every message)."""

    decoded = 0

    async def _listen(self) -> AsyncIterator[Any]:
        async for message in super()._listen():
            self.decoded += 1
            yield message


# --- one node (a child process) ------------------------------------------------


async def node(kind: str, port: int, redis_url: str) -> None:
    manager: Any
    if kind == "rooms":
        manager = RoomRelay(transport_for(redis_url, cluster=False))
        await manager.open()
    else:
        manager = CountingRedisManager(redis_url)
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    app = web.Application()
    sio.attach(app)

    async def on_connect(sid: str, environ: Any, auth: dict[str, Any]) -> None:
        for room in auth["rooms"]:
            await sio.enter_room(sid, f"r:{room}")

    sio.on("connect", on_connect)

    def decoded() -> int:
        return manager.counts[RECEIVED] if kind == "rooms" else manager.decoded

    async def emit(request: web.Request) -> web.Response:
        body = await request.json()
        started = time.process_time()
        for i in range(body["count"]):
            for room in body["rooms"]:
                await sio.emit("tick", {"i": i, "room": room}, room=f"r:{room}")
        return web.json_response({"cpu_s": time.process_time() - started})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"decoded": decoded(), "cpu_s": time.process_time()})

    app.router.add_post("/emit", emit)
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


# --- the orchestrator ------------------------------------------------------------


def start_node(kind: str, redis_url: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    args = [sys.executable, __file__, "--node", kind, "--port", str(port), "--redis", redis_url]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process, f"http://127.0.0.1:{port}"


async def connect(url: str, rooms: list[str], got: dict[str, int]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    async def tick(data: dict[str, Any]) -> None:
        got[data["room"]] += 1

    client.on("tick", tick)
    await client.connect(url, auth={"rooms": rooms}, transports=["websocket"], wait_timeout=10)
    return client


async def one_kind(
    kind: str, redis_url: str, rooms: int, emits: int, processes: int, deciders: int
) -> dict[str, Any]:
    nodes = [start_node(kind, redis_url) for _ in range(processes)]
    urls = [url for _, url in nodes]
    names = [f"room{i}" for i in range(rooms)]
    halves = [names[i::processes] for i in range(processes)]
    got = dict.fromkeys(names, 0)
    clients: list[socketio.AsyncClient] = []
    try:
        for url, half in zip(urls, halves, strict=True):
            for room in half:
                clients.append(await connect(url, [room], got))
        async with aiohttp.ClientSession() as http:
            before = [await (await http.get(u + "/stats")).json() for u in urls]
            body = {"rooms": names, "count": emits // deciders}
            await asyncio.gather(*(http.post(u + "/emit", json=body) for u in urls[:deciders]))
            deadline = time.monotonic() + 60
            expected = rooms * (emits // deciders) * deciders
            while sum(got.values()) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # late messages still count as decoded
            after = [await (await http.get(u + "/stats")).json() for u in urls]
    finally:
        for client in clients:
            await client.disconnect()
        for process, _ in nodes:
            process.terminate()
            process.wait(timeout=10)
    decoded = [a["decoded"] - b["decoded"] for a, b in zip(after, before, strict=True)]
    cpu = [a["cpu_s"] - b["cpu_s"] for a, b in zip(after, before, strict=True)]
    delivered = sum(got.values())
    # the processes that only listen: their CPU is the relay's intake
    rest = cpu[deciders:] or cpu
    return {"decoded": decoded, "cpu": cpu, "rest": rest, "delivered": delivered}


async def run(rooms: int, emits: int, processes: int, deciders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis")
        try:
            results = {
                kind: await one_kind(kind, redis.url, rooms, emits, processes, deciders)
                for kind in KINDS
            }
        finally:
            redis.stop()
    expected = rooms * (emits // deciders) * deciders
    print(f"\n{rooms} rooms, {emits} emits each, decided on {deciders} of {processes} processes;")
    print(f"each process holding clients of 1/{processes} of the rooms; {expected} events\n")
    print("| manager | decoded per process | CPU s per process | CPU s, listen-only | delivered |")
    print("| --- | --- | --- | --- | --- |")
    for kind, r in results.items():
        decoded = " / ".join(str(d) for d in r["decoded"])
        cpu = " / ".join(f"{c:.2f}" for c in r["cpu"])
        rest = " / ".join(f"{c:.2f}" for c in r["rest"])
        print(f"| {kind} | {decoded} | {cpu} | {rest} | {r['delivered']}/{expected} |")
    base, ours = results["socketio"], results["rooms"]
    ratios = {
        name: round(sum(ours[name]) / max(1e-9, sum(base[name])), 3)
        for name in ("decoded", "cpu", "rest")
    }
    print(
        f"\nrooms / AsyncRedisManager: decoded {ratios['decoded']:.2f}x, "
        f"CPU {ratios['cpu']:.2f}x, CPU of listen-only processes {ratios['rest']:.2f}x"
    )
    print(json.dumps(ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--emits", type=int, default=40)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--deciders", type=int, default=0, help="processes that emit (0: all)")
    parser.add_argument("--node", choices=KINDS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis")
    args = parser.parse_args()
    if args.node:
        asyncio.run(node(args.node, args.port, args.redis))
    else:
        deciders = args.deciders or args.processes
        asyncio.run(run(args.rooms, args.emits, args.processes, deciders))


if __name__ == "__main__":
    main()
