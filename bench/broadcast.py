"""Broadcast fan-out: how long a room-wide broadcast takes to reach 1,000 and
3,000 websocket listeners, for droproom and for three bare servers doing the
same broadcast: python-socketio on aiohttp with its defaults, the same with
permessage-deflate off (as droproom has it), and Node socket.io.

The listeners are one separate Node process (`bench/js/listeners.mjs`) with
N official socket.io-client connections. Each broadcast is a `poll:updated`
carrying `server_time` (the server's clock just before it emits; droproom
stamps it in the tally flush), and a listener's latency is its `Date.now()`
on arrival minus that: one machine, one clock, no skew. A round is one
broadcast; the next starts once every listener has the previous one.

droproom: a real `droproom serve` (embedded Redis, own data dir under /tmp),
a room made with the admin HTTP API, listener tokens minted with the same
secret; each round one new voter votes and the coalesced tally flush
(every 250 ms) broadcasts the tallies. droproom serves with the garbage
collector's thresholds raised (server/cli.py, GC_THRESHOLDS); `droproom-stockgc`
is the same server with Python's default thresholds, for comparison.

    python bench/broadcast.py [--listeners 1000,3000] [--rounds 10] [--connect-timeout 300]
                              [--servers droproom,droproom-stockgc,python,python-plain,node]

More droproom kinds (DROPROOM_KINDS): `droproom-w2` (`serve --workers 2`;
`droproom` is always `--workers 1`), `droproom-drop` and
`droproom-drop-hooked` (rounds of the stock flush's `drop:updated`, the
room's owner without / with a webhook endpoint), and their `-w2-` variants.
A server may be named twice (ABBA orders); one that fails (a connect phase
over --connect-timeout) is a row saying how far it got.

Before and after in one run (`--before DIR`): DIR holds another build of
droproom (e.g. `git archive <commit> | tar -x -C DIR`); every droproom kind
with `-before` appended (`droproom-before`, `droproom-w2-before`) runs that
build (its own `server/`, run from DIR), the plain kinds run this checkout.

Every process it starts is stopped by it (and each stops by itself when its
stdin closes).
"""

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from server import tokens
from server.ports import free_port
from server.roles import Role

ROOT = Path(__file__).resolve().parent.parent
WEB_CLIENT = ROOT / "web_client"
JS = Path(__file__).resolve().parent / "js"
SECRET = "bench-secret-0123456789abcdef0123456789"
ADMIN_KEY = "bench-admin-key"
ROOM = "bench"
ROUND_TIMEOUT_S = 15.0
CONNECT_TIMEOUT = {"s": 300.0}  # --connect-timeout


def raise_open_files(wanted: int = 65536) -> int:
    """Children inherit it: the Node listeners need a socket per listener."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return max(soft, target)


class Child:
    """A child process we own: started with a pipe on stdin, stopped by pid."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    @classmethod
    async def start(
        cls, name: str, *cmd: str, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> "Child":
        process = await asyncio.create_subprocess_exec(
            *cmd,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=16 * 1024 * 1024,
        )
        return cls(process, name)

    async def line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            raw = await self.process.stdout.readline()
        if not raw:
            raise RuntimeError(f"{self.name} exited ({self.process.returncode})")
        return raw.decode()

    async def wait_for_line(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = await self.line(deadline - time.monotonic())
            if marker in text:
                return text

    async def stop(self, grace_s: float = 90.0) -> None:
        if self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(grace_s):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


@dataclass
class Target:
    """One server under test: how to start it, prepare it and make it broadcast."""

    name: str
    url: str
    server: Child
    trigger: Callable[[int], Awaitable[None]] = field(repr=False)
    listener_tokens: list[str] | None = None
    state_event: str | None = None
    clients: list[socketio.AsyncClient] = field(default_factory=list)
    event: str = "poll:updated"  # what the listeners time

    async def close(self) -> None:
        for client in self.clients:
            await client.disconnect()
        await self.server.stop()


async def sio_client(url: str, auth: dict[str, Any]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=30)
    return client


def mint(identity: str, role: Role) -> str:
    return tokens.mint(
        SECRET, room=ROOM, identity=identity, role=role, name=identity, ttl_s=3600, now=time.time()
    )


# `droproom-stockgc`: droproom with Python's default GC thresholds. With
# thousands of connections the heap holds ~0.5 M objects (mostly engine.io's
# per-socket tasks), a full collection takes 0.25-0.4 s and, with the default
# thresholds, one lands every second or two during broadcasts.
STOCK_GC = "700,10,10"
# droproom stops (SIGTERM: a clean shutdown) when its stdin closes, so it
# never outlives the bench, however the bench ends.
STOP_WITH_STDIN = (
    "import os, signal, sys, threading\n"
    "def watch():\n"
    "    while os.read(0, 1024):\n"
    "        pass\n"
    "    os.kill(os.getpid(), signal.SIGTERM)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
)


def droproom_command(port: int, data_dir: Path, workers: int = 1) -> list[str]:
    # Always said: `serve` alone runs DROPROOM_WORKERS, else one worker per core.
    args = ["serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers)]
    code = STOP_WITH_STDIN + f"from server.cli import main\nsys.exit(main({args!r}))\n"
    return [sys.executable, "-c", code]


# The kinds of droproom run (`--servers`): name -> (label, workers, what a round emits).
# `poll`: a new vote, the tally flush's `poll:updated`. `drop`: a new buyer's
# `cart:add` on a live drop, the stock flush's `drop:updated` (the owner, the
# admin, has no webhook endpoint); `drop-hooked`: the same with an endpoint
# of the owner wanting drop.live and drop.sold_out (the outbound-webhook
# listener looks at every `drop:updated`).
DROPROOM_KINDS: dict[str, tuple[str, int, str]] = {
    "droproom": ("droproom", 1, "poll"),
    "droproom-stockgc": ("droproom (stock gc)", 1, "poll"),
    "droproom-w2": ("droproom --workers 2", 2, "poll"),
    "droproom-drop": ("droproom drop:updated, no endpoint", 1, "drop"),
    "droproom-drop-hooked": ("droproom drop:updated, owner's endpoint", 1, "drop-hooked"),
    "droproom-w2-drop": ("droproom --workers 2 drop:updated, no endpoint", 2, "drop"),
    "droproom-w2-drop-hooked": (
        "droproom --workers 2 drop:updated, owner's endpoint",
        2,
        "drop-hooked",
    ),
}


async def admin_post(url: str, path: str, body: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as resp,
    ):
        if resp.status != 201:
            raise RuntimeError(f"{path} answered {resp.status}: {await resp.text()}")


BEFORE = {"dir": ""}  # --before: another build's checkout; "-before" kinds run it


def droproom_kind(server: str) -> str | None:
    """The DROPROOM_KINDS entry a `--servers` name runs (`-before` or not)."""
    kind = server.removesuffix("-before")
    if kind in DROPROOM_KINDS and (kind == server or BEFORE["dir"]):
        return kind
    return None


async def start_droproom(
    listeners: int, rounds: int, data_dir: Path, kind: str = "droproom", before: bool = False
) -> Target:
    label, workers, emits = DROPROOM_KINDS[kind]
    label = f"{label} (before)" if before else label
    build = Path(BEFORE["dir"]) if before else ROOT
    port = free_port()
    server = await Child.start(
        "droproom",
        *droproom_command(port, data_dir, workers),
        cwd=build,
        env={
            "PYTHONPATH": str(build),
            "DROPROOM_SECRET": SECRET,
            "DROPROOM_ADMIN_KEY": ADMIN_KEY,
            "REDIS_URL": "",
            "DROPROOM_GC_THRESHOLDS": STOCK_GC if kind == "droproom-stockgc" else "",
            # the endpoint below is on loopback (a closed port: deliveries fail and retry)
            "DROPROOM_WEBHOOK_ALLOW_PRIVATE": "1",
        },
    )
    try:
        return await _prepare(server, f"http://127.0.0.1:{port}", label, emits, listeners, rounds)
    except BaseException:
        await server.stop()
        raise


async def _prepare(
    server: Child, url: str, label: str, emits: str, listeners: int, rounds: int
) -> Target:
    """The room, its poll or live drop, and the voters or buyers of the rounds."""
    await server.wait_for_line("listening", 90)
    modules = ["polls"] if emits == "poll" else ["polls", "shop"]
    room = {"id": ROOM, "title": "Broadcast bench", "modules": modules}
    await admin_post(url, "/api/v1/rooms", room)
    moderator = await sio_client(url, {"token": mint("moderator", Role.MODERATOR)})
    voters = [await sio_client(url, {"token": mint(f"v{r}", Role.LISTENER)}) for r in range(rounds)]
    if emits == "poll":
        created = await moderator.call("poll:create", {"question": "Which?", "options": ["a", "b"]})
        poll_id = created["poll"]["id"]

        async def trigger(round_: int) -> None:
            answer = await voters[round_ - 1].call("poll:vote", {"poll_id": poll_id, "option": 0})
            if not answer.get("ok"):
                raise RuntimeError(f"vote refused: {answer}")

    else:
        if emits == "drop-hooked":
            hook = {"url": "http://127.0.0.1:9/hook", "events": ["drop.live", "drop.sold_out"]}
            await admin_post(url, "/api/v1/webhooks", hook)
        product = {"id": "cap", "title": "Cap", "price": 1200, "currency": "usd"}
        await admin_post(url, "/api/v1/products", product | {"kind": "physical"})
        now = time.time()
        drop = {"product_id": "cap", "starts_at": now - 1, "ends_at": now + 3600}
        scheduled = await moderator.call("drop:schedule", drop | {"stock": 10 * rounds + 10})
        if not scheduled.get("ok"):
            raise RuntimeError(f"drop:schedule: {scheduled}")
        drop_id = scheduled["drop"]["id"]

        async def trigger(round_: int) -> None:
            answer = await voters[round_ - 1].call("cart:add", {"drop_id": drop_id, "qty": 1})
            if not answer.get("ok"):
                raise RuntimeError(f"cart:add refused: {answer}")

    listener_tokens = [mint(f"l{i}", Role.LISTENER) for i in range(listeners)]
    clients = [moderator, *voters]
    event = "poll:updated" if emits == "poll" else "drop:updated"
    return Target(label, url, server, trigger, listener_tokens, "room:state", clients, event)


async def start_bare(name: str, *cmd: str) -> Target:
    port = free_port()
    server = await Child.start(name, *cmd, str(port))
    await server.wait_for_line("listening", 60)
    url = f"http://127.0.0.1:{port}"
    controller = await sio_client(url, {"controller": True})

    async def trigger(round_: int) -> None:
        await controller.call("bench:go", {"votes": round_})

    return Target(name, url, server, trigger, clients=[controller])


@dataclass
class Result:
    server: str
    listeners: int
    connected: int = 0
    connect_s: float = 0.0
    samples: list[float] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    missing: int = 0
    error: str = ""

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def connect_phase(crowd: Child, timeout_s: float) -> dict[str, Any]:
    """The listeners' "ready" line; past `timeout_s`, an error saying how far they got."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    try:
        while True:
            line = json.loads(await crowd.line(deadline - time.monotonic()))
            if line.get("type") == "ready":
                return line
            last = line
    except TimeoutError:
        got = f"{last.get('opened', 0)} connected (of which still in their handshake: up to 50)"
        raise RuntimeError(f"connect phase over {timeout_s:.0f} s: {got}") from None


async def measure(target: Target, listeners: int, rounds: int, tmp: Path) -> Result:
    result = Result(target.name, listeners)
    env = {"URL": target.url, "N": str(listeners), "WEB_CLIENT": str(WEB_CLIENT)}
    if target.listener_tokens is not None:
        token_file = tmp / f"tokens-{target.name}-{listeners}.json"
        token_file.write_text(json.dumps(target.listener_tokens))
        env["TOKENS"] = str(token_file)
    if target.state_event:
        env["STATE_EVENT"] = target.state_event
    env["ROUND_TIMEOUT_MS"] = str(int(ROUND_TIMEOUT_S * 1000))
    env["EVENT"] = target.event
    crowd = await Child.start("listeners", "node", str(JS / "listeners.mjs"), env=env)
    try:
        ready = await connect_phase(crowd, CONNECT_TIMEOUT["s"])
        result.connected, result.connect_s = ready["connected"], ready["ms"] / 1000
        await asyncio.sleep(2.0)  # let the joins' presence broadcasts pass
        for round_ in range(1, rounds + 1):
            await target.trigger(round_)
            line = json.loads(await crowd.wait_for_line('"round"', ROUND_TIMEOUT_S + 10))
            result.samples += line["lat"]
            result.last.append(max(line["lat"], default=float("nan")))
            result.missing += line["missing"]
            await asyncio.sleep(0.3)
    finally:
        await crowd.stop()
    return result


async def run_one(server: str, listeners: int, rounds: int, tmp: Path) -> Result:
    kind = droproom_kind(server)
    if kind is not None:
        data_dir = Path(tempfile.mkdtemp(prefix=f"{server}-{listeners}-", dir=tmp))
        target = await start_droproom(listeners, rounds, data_dir, kind, kind != server)
    elif server == "python":
        script = str(ROOT / "bench" / "bare_sio.py")
        target = await start_bare("python-socketio", sys.executable, script)
    elif server == "python-plain":
        script = str(ROOT / "bench" / "bare_sio.py")
        target = await start_bare("python-socketio plain", sys.executable, script, "--plain")
    else:
        target = await start_bare(
            "node socket.io", "node", str(JS / "bare_server.mjs"), str(WEB_CLIENT)
        )
    try:
        return await measure(target, listeners, rounds, tmp)
    finally:
        await target.close()


def table(results: list[Result]) -> str:
    rows = [
        "| server | listeners (connected) | p50 ms | p95 ms | p99 ms "
        "| last listener ms (median / worst round) | missed | p50 / p99 vs bare python "
        "| p50 / p99 vs bare Node | connect phase s | p50 / p99 / connect vs before |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    by_key = {(r.server, r.listeners): r for r in results}
    for r in results:
        if r.error:
            rows.append(f"| {r.server} | {r.listeners} (failed: {r.error}) | | | | | | | | | |")
            continue
        ratios = []
        for base in ("python-socketio", "node socket.io"):
            b = by_key.get((base, r.listeners))
            if b is None or b is r:
                ratios.append("")
            else:
                ratios.append(f"{r.pct(0.5) / b.pct(0.5):.2f} / {r.pct(0.99) / b.pct(0.99):.2f}")
        last = f"{statistics.median(r.last):.0f} / {max(r.last):.0f}" if r.last else "n/a"
        b = by_key.get((f"{r.server} (before)", r.listeners))
        if b is not None and not b.error:
            ratios.append(
                f"{r.pct(0.5) / b.pct(0.5):.2f} / {r.pct(0.99) / b.pct(0.99):.2f} / "
                f"{r.connect_s / b.connect_s:.2f}"
            )
        else:
            ratios.append("")
        rows.append(
            f"| {r.server} | {r.listeners} ({r.connected}) | {r.pct(0.5):.0f} | "
            f"{r.pct(0.95):.0f} | {r.pct(0.99):.0f} | {last} | {r.missing} | "
            f"{ratios[0]} | {ratios[1]} | {r.connect_s:.0f} | {ratios[2]} |"
        )
    return "\n".join(rows)


async def main(args: argparse.Namespace) -> int:
    raise_open_files()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="droproom-bench-") as tmp:
        for listeners in args.listeners:
            for server in args.servers:
                try:
                    result = await run_one(server, listeners, args.rounds, Path(tmp))
                except (RuntimeError, TimeoutError, OSError) as exc:  # say it, go on
                    sys.stderr.write(f"{server} {listeners}: FAILED: {exc!r}\n")
                    results.append(Result(server, listeners, error=repr(exc)[:200]))
                    continue
                results.append(result)
                sys.stderr.write(
                    f"{result.server} {listeners}: p50 {result.pct(0.5):.0f} ms, "
                    f"p99 {result.pct(0.99):.0f} ms, missed {result.missing}; last listener "
                    f"per round: {' '.join(f'{ms:.0f}' for ms in result.last)} ms\n"
                )
    sys.stdout.write(table(results) + "\n")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", default="1000,3000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--connect-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--servers", default="droproom,droproom-stockgc,python,python-plain,node")
    parser.add_argument("--before", default="", help="another build's checkout (-before kinds)")
    args = parser.parse_args(argv)
    BEFORE["dir"] = str(Path(args.before).resolve()) if args.before else ""
    args.listeners = [int(n) for n in args.listeners.split(",")]
    CONNECT_TIMEOUT["s"] = args.connect_timeout
    names = {"python", "python-plain", "node"}
    args.servers = [s for s in args.servers.split(",") if s in names or droproom_kind(s)]
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
