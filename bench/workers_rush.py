"""Drop rush over workers: the same N buyers (the official socket.io JS
client in a separate Node process, bench/drop_rush.py's) call `cart:add` the
moment a drop of S units goes live, against `droproom serve --workers 1` and
`--workers 2` (real processes, embedded Redis and localstripe), rounds in
ABBA order. Prints answers/s, p50/p99 and oversell per round, and the ratio
of two workers to one measured in the same run.

    python bench/workers_rush.py [--buyers 2000] [--stock 200] [--rounds 4]

Everything it starts stops when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from drop_rush import free_port, run_node_buyers, summarize  # noqa: E402

from server.roles import Role  # noqa: E402
from server.tokens import mint  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789"
ADMIN = "bench-admin"
ROOM = "rush"


async def start(workers: int, data: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    env |= {"DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--workers",
        str(workers),
        "--port",
        str(port),
        "--data-dir",
        str(data),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(120):
        while b"listening on" not in await proc.stdout.readline():
            pass
    return proc, f"http://127.0.0.1:{port}"


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


async def admin_post(url: str, path: str, body: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, json=body, headers=headers) as r,
    ):
        if r.status >= 300:
            raise RuntimeError(f"{path}: {r.status} {await r.text()}")


def token(identity: str, role: Role) -> str:
    now = time.time()
    return mint(SECRET, room=ROOM, identity=identity, role=role, name=identity, ttl_s=3600, now=now)


async def one_round(workers: int, tmp: Path, buyers: int, stock: int) -> dict[str, Any]:
    proc, url = await start(workers, tmp / "data")
    mod = socketio.AsyncClient(reconnection=False)
    try:
        await admin_post(url, "/api/v1/rooms", {"id": ROOM, "title": "Rush"})
        product = {"id": "cap", "title": "Cap", "price": 1200, "currency": "usd"}
        await admin_post(url, "/api/v1/products", product | {"kind": "physical"})
        await mod.connect(
            url, auth={"token": token("mod", Role.MODERATOR)}, transports=["websocket"]
        )
        tokens = [token(f"buyer{i}", Role.LISTENER) for i in range(buyers)]

        async def fire() -> None:
            starts = time.time() + 1.0
            drop = {"product_id": "cap", "starts_at": starts, "ends_at": starts + 600}
            answer = await mod.call("drop:schedule", drop | {"stock": stock, "per_buyer_limit": 1})
            if not answer.get("ok"):
                raise RuntimeError(f"drop:schedule: {answer}")

        results = await run_node_buyers(tmp, url, tokens, fire)
    finally:
        await mod.disconnect()
        await stop(proc)
    summary = summarize(results)
    summary["oversell"] = max(0, summary["codes"].get("ok", 0) - stock)
    summary["workers"] = workers
    return summary


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--stock", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    order = [(1, 2, 2, 1)[i % 4] for i in range(args.rounds)]  # ABBA
    rows = []
    for n, workers in enumerate(order):
        with tempfile.TemporaryDirectory(prefix=f"workers-rush-{n}-") as tmp:
            rows.append(await one_round(workers, Path(tmp), args.buyers, args.stock))
        r = rows[-1]
        print(
            f"round {n + 1}: {workers} worker(s): {r['answers_per_s']:.0f} answers/s, "
            f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, oversell {r['oversell']}, "
            f"{r['codes']}",
            flush=True,
        )
    print(f"\n{args.buyers} buyers on {args.stock} units, {os.cpu_count()} cores")
    print("| workers | answers/s (mean) | p99 ms (mean) | oversell | ratio to 1 worker |")
    print("| --- | --- | --- | --- | --- |")
    base = None
    for workers in (1, 2):
        mine = [r for r in rows if r["workers"] == workers]
        if not mine:
            continue
        rate = sum(r["answers_per_s"] for r in mine) / len(mine)
        p99 = sum(r["p99_ms"] for r in mine) / len(mine)
        base = base or rate
        over = sum(r["oversell"] for r in mine)
        print(f"| {workers} | {rate:.0f} | {p99:.0f} | {over} | {rate / base:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
