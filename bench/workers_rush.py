"""Drop rush over workers: the same N buyers (the official socket.io JS
client in a separate Node process, bench/drop_rush.py's) call `cart:add` the
moment a drop of S units goes live, against `droproom serve --workers 1` (one
process), `--workers 2` (real processes, embedded Redis and localstripe) and
a bare python-socketio server running the same reservation script (one
process, no deflate, as droproom's websockets: drop_rush.bare_socketio).
The order of the three rotates each round. Prints answers/s, p50/p99,
oversell and the connect phase per run, and ratios to one process measured
in the same run.

    python bench/workers_rush.py [--buyers 2000] [--stock 200] [--rounds 2]

The servers' output goes to a log file per run (printed on a failure): a
pipe nobody reads would stall them once it filled. Everything it starts
stops when it ends.
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

from drop_rush import (  # noqa: E402
    bare_socketio,
    free_port,
    run_node_buyers,
    start_redis,
    summarize,
)

from server.roles import Role  # noqa: E402
from server.tokens import mint  # noqa: E402

SECRET = "bench-secret-0123456789abcdef0123456789"
ADMIN = "bench-admin"
ROOM = "rush"


def _said(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


async def start(workers: int, data: Path, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    env |= {"DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
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
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    async with asyncio.timeout(120):
        while "listening on" not in _said(log):
            if proc.returncode is not None:
                raise RuntimeError(f"serve exited {proc.returncode}:\n{_said(log)[-2000:]}")
            await asyncio.sleep(0.2)
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
    log = tmp / "serve.log"
    proc, url = await start(workers, tmp / "data", log)
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

        try:
            results = await run_node_buyers(tmp, url, tokens, fire)
        except RuntimeError:
            sys.stderr.write(f"serve's log (tail):\n{_said(log)[-3000:]}\n")
            raise
    finally:
        await mod.disconnect()
        await stop(proc)
    summary = summarize(results)
    summary["oversell"] = max(0, summary["codes"].get("ok", 0) - stock)
    summary["server"] = f"{workers} worker(s)" if workers > 1 else "one process"
    return summary


async def bare_round(tmp: Path, buyers: int, n: int) -> dict[str, Any]:
    """The floor: bare python-socketio + the same script, on its own Redis."""
    proc, sock = start_redis(tmp)
    try:
        summary = await bare_socketio(f"unix://{sock}", tmp, buyers, plain=True, drop_id=f"b{n}")
    finally:
        proc.terminate()
        proc.wait()
    summary["oversell"] = 0  # its drop has no stock limit: it measures the path only
    summary["server"] = "bare python-socketio"
    return summary


SERVERS: tuple[int | str, ...] = (1, 2, "bare")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--stock", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the three servers")
    args = parser.parse_args()
    rows = []
    for n in range(args.rounds):
        for server in SERVERS[n % 3 :] + SERVERS[: n % 3]:  # rotated each round
            with tempfile.TemporaryDirectory(prefix=f"workers-rush-{n}-") as tmp:
                if server == "bare":
                    row = await bare_round(Path(tmp), args.buyers, n)
                else:
                    row = await one_round(int(server), Path(tmp), args.buyers, args.stock)
            rows.append(row)
            print(
                f"round {n + 1}: {row['server']}: {row['answers_per_s']:.0f} answers/s, "
                f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
                f"oversell {row['oversell']}, connect phase {row['connect_s']:.1f} s, "
                f"{row['codes']}",
                flush=True,
            )
    print(f"\n{args.buyers} buyers on {args.stock} units, {os.cpu_count()} cores, ", end="")
    print(f"{args.rounds} round(s), means")
    print("| server | answers/s | p50 ms | p99 ms | oversell | connect phase s ", end="")
    print("| answers/s vs one process | p99 vs one process |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    means: dict[str, dict[str, float]] = {}
    for name in ("one process", "2 worker(s)", "bare python-socketio"):
        mine = [r for r in rows if r["server"] == name]
        if mine:
            means[name] = {
                k: sum(r[k] for r in mine) / len(mine)
                for k in ("answers_per_s", "p50_ms", "p99_ms", "connect_s", "oversell")
            }
    base = means.get("one process")
    for name, m in means.items():
        rate = f"{m['answers_per_s'] / base['answers_per_s']:.2f}x" if base else ""
        p99 = f"{m['p99_ms'] / base['p99_ms']:.2f}x" if base else ""
        print(
            f"| {name} | {m['answers_per_s']:.0f} | {m['p50_ms']:.0f} | {m['p99_ms']:.0f} | "
            f"{m['oversell']:.0f} | {m['connect_s']:.1f} | {rate} | {p99} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
