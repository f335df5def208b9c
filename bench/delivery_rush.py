"""Delivery rush benchmark: a drop of N units of a tone sells out, then N
buyers download their file at once from a separate client process (aiohttp,
at most C connections). Reports the time from paid to links issued, the
download p50/p95/p99 and throughput, against two baselines in the same run
on the same file: aiohttp serving it bare (no signature, its own process)
and Debian's nginx serving it statically (one worker, sendfile on). Then the
same for the tiny `.3gp` variant.

    python bench/delivery_rush.py [--buyers 1000] [--concurrency 200] [--rounds 1]

The orders are paid through the domain, not through Stripe: each buyer's
`cart:add` reservation and checkout freeze run their real Lua scripts, the
order is given a succeeded intent (no Stripe round trip) and settled by
`Settlement.apply`: the real paid transition (entitlements stored, library
indexed) and the receipt's links minted as the buyer's `order:updated`
carries them. The files are random bytes of a real tone's sizes (a 30 s
.m4r ~480 KB, a 30 s .3gp ~65 KB): serving does not look inside them.

nginx: `apt-get install -y nginx-light` (or `nginx`) when /usr/sbin/nginx
is missing; its row is then skipped. Everything it starts (the server, its
embedded Redis and localstripe, bare aiohttp, nginx, the client) is stopped
by its own handle when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from commerce import keys  # noqa: E402
from commerce.carts import AddRequest  # noqa: E402
from commerce.catalog import Kind, Product  # noqa: E402
from commerce.downloads import percentiles  # noqa: E402
from commerce.drops import DropRequest  # noqa: E402
from commerce.payment import Intent, IntentStatus, marker  # noqa: E402
from commerce.storage import FORMATS, tone_key  # noqa: E402
from server.embedded.stripe_embed import free_port  # noqa: E402

ROOM = "delivery"
SECRET = "bench-secret-0123456789abcdef0123456789"
QUIET_BUYERS = 50
SIZES = {"m4r": 480_000, "m4a": 480_000, "mp3": 480_000, "opus": 180_000, "3gp": 65_000}
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


# ---- the client process ----------------------------------------------------


async def download_all(urls: list[str], concurrency: int) -> dict[str, Any]:
    """Every URL at once over at most `concurrency` connections. `ms` is each
    buyer's time, from asking to the last byte (waiting for a connection
    included); `service_ms` starts when a connection is theirs."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    gate = asyncio.Semaphore(concurrency)
    checked: dict[str, str] = {}

    async def one(http: aiohttp.ClientSession, i: int, url: str) -> tuple[float, float, int, int]:
        asked = time.perf_counter()
        async with gate:
            served = time.perf_counter()
            async with http.get(url) as resp:
                body = await resp.read()
            done = time.perf_counter()
        if i % 50 == 0:
            checked[url] = hashlib.sha256(body).hexdigest()
        return done - asked, done - served, resp.status, len(body)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.perf_counter()
        done = await asyncio.gather(*(one(http, i, u) for i, u in enumerate(urls)))
        wall = time.perf_counter() - started
    return {
        "ms": [d[0] * 1000 for d in done],
        "service_ms": [d[1] * 1000 for d in done],
        "statuses": sorted({d[2] for d in done}),
        "bytes": sum(d[3] for d in done),
        "wall_s": wall,
        "sha256": sorted(set(checked.values())),
    }


async def run_client(tmp: Path, urls: list[str], concurrency: int) -> dict[str, Any]:
    path = tmp / f"urls-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(urls))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        str(path),
        "--concurrency",
        str(concurrency),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the client process failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out)
    return result


# ---- the baselines ---------------------------------------------------------


def serve_bare(root: Path, port: int) -> None:
    """aiohttp alone: the file by sendfile, no signature, no middleware."""

    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / request.match_info["name"])

    app = web.Application()
    app.router.add_get("/f/{name}", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def wait_port(port: int) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)


Server = tuple[asyncio.subprocess.Process, int]


async def start_bare(root: Path) -> Server:
    port = free_port()
    args = ["--bare", str(root), "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(sys.executable, __file__, *args)
    await wait_port(port)
    return proc, port


NGINX_CONF = """
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  types {{ audio/mp4 m4r m4a; audio/3gpp 3gp; application/zip zip; }}
  server {{
    listen 127.0.0.1:{port};
    root {root};
  }}
}}
"""


async def start_nginx(tmp: Path, root: Path) -> Server | None:
    if NGINX is None:
        return None
    port = free_port()
    conf = tmp / "nginx" / "nginx.conf"
    conf.parent.mkdir(exist_ok=True)
    conf.write_text(NGINX_CONF.format(tmp=conf.parent, port=port, root=root))
    args = ["-p", str(conf.parent), "-e", "stderr", "-c", str(conf)]
    proc = await asyncio.create_subprocess_exec(NGINX, *args)
    await wait_port(port)
    return proc, port


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process, its threads and its live
    children (nginx's worker): on a shared machine, the server's own cost
    per download, which other load does not inflate the way it does latency."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else ():
        total += cpu_seconds(int(child))
    return total


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.terminate()  # by its own pid
    async with asyncio.timeout(10):
        await proc.wait()


# ---- droproom --------------------------------------------------------------


async def sell_out(
    app: web.Application, buyers: int, at_once: int = 50, first: int = 0, drop_id: str = ""
) -> tuple[list[dict[str, Any]], float, str]:
    """A drop of `buyers` units (or more of the drop `drop_id`), each bought
    by one buyer, at most `at_once` payments settling together; the paid
    orders as their buyers see them."""
    from server.shop.resources import SHOP

    shop = app[SHOP]
    now = time.time()
    if not drop_id:
        req = DropRequest("ring", now, now + 3600, buyers + QUIET_BUYERS, 1)
        drop_id = (await shop.drops.schedule(ROOM, req, now))[0].id
    gate = asyncio.Semaphore(at_once)
    orders: list[dict[str, Any]] = []

    async def buyer(i: int) -> None:
        identity = f"buyer{i}"
        async with gate:
            await shop.carts.add(ROOM, identity, AddRequest(None, drop_id, 1), time.time())
            order, _ = await shop.checkout.freeze(ROOM, identity, time.time())
            token = secrets.token_hex(8)
            await shop.orders.claim_intent(order, token, time.time())
            intent = Intent(
                f"pi_bench_{i}",
                IntentStatus.SUCCEEDED,
                order.total,
                order.currency,
                None,
                marker(order.id, ROOM, identity),
            )
            await shop.orders.set_intent(order, token, intent)
            order = await shop.orders.get(ROOM, order.id)
            events = await shop.settlement.apply(order, intent, time.time())
            told = next(e for e in events if e.name == "order:updated")
            orders.append(told.payload["order"])

    started = time.perf_counter()
    await asyncio.gather(*(buyer(i) for i in range(first, first + buyers)))
    return orders, time.perf_counter() - started, drop_id


async def put_tone(app: web.Application, tmp: Path) -> dict[str, str]:
    """The product with ready audio, its files in the server's storage."""
    from server.appkeys import STORAGE
    from server.shop.resources import SHOP

    shop = app[SHOP]
    await shop.catalog.create(Product("ring", "Rush Bell", 199, "eur", Kind.DIGITAL, None))
    shas: dict[str, str] = {}
    variants = []
    for fmt, size in {**SIZES, "bundle": 1_700_000}.items():
        body = os.urandom(size)
        sha = hashlib.sha256(body).hexdigest()
        src = tmp / f"src.{fmt}"
        src.write_bytes(body)
        await app[STORAGE].put_file(src, tone_key(sha, fmt), FORMATS[fmt][1])
        shas[fmt] = sha
        if fmt != "bundle":
            variants.append({"format": fmt, "bytes": size, "sha256": sha})
    bundle = {"bytes": 1_700_000, "sha256": shas["bundle"]}
    await shop.catalog.set_audio(
        "ring", {"state": "ready", "variants": variants, "bundle": bundle, "progress": 1.0}
    )
    return shas


def summary(result: dict[str, Any], field: str = "ms") -> dict[str, Any]:
    p = percentiles(sorted(result[field]))
    return {
        **p,
        "wall_s": result["wall_s"],
        "mb_s": result["bytes"] / result["wall_s"] / 1e6,
        "per_s": len(result["ms"]) / result["wall_s"],
        "statuses": result["statuses"],
        "sha256": result["sha256"],
    }


async def bench(args: argparse.Namespace, tmp: Path) -> None:
    from rooms import lifecycle
    from server.app import create_app
    from server.appkeys import ROOMS, STORAGE
    from server.cli import gc_thresholds
    from server.config import Settings
    from server.shop.resources import SHOP

    settings = Settings.from_env(
        data_dir=tmp / "data",
        port=free_port(),
        secret=SECRET,
        admin_key="bench",
        download_ttl_s=3600,
    )
    gc.set_threshold(*gc_thresholds())  # as `droproom serve` runs
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    bare = nginx = None
    try:
        await lifecycle.create(app[ROOMS], {"id": ROOM, "title": "Rush"}, time.time())
        shas = await put_tone(app, tmp)
        orders, sellout_s, drop_id = await sell_out(app, args.buyers)
        redis = app[SHOP].orders._redis
        rushed = [float(v) for v in await redis.lrange(keys.delivery_ms(ROOM), 0, -1)]
        # A few more buyers one at a time: the paid -> links time without a rush.
        await sell_out(app, QUIET_BUYERS, at_once=1, first=args.buyers, drop_id=drop_id)
        quiet = [float(v) for v in await redis.lrange(keys.delivery_ms(ROOM), 0, -1)]
        delivery = (rushed, quiet[:QUIET_BUYERS])
        files_root = app[STORAGE].local_path("tones/x").parent.parent  # type: ignore[union-attr]
        bare = await start_bare(files_root / "tones")
        nginx = await start_nginx(tmp, files_root)
        servers = {"bare aiohttp": (f"http://127.0.0.1:{bare[1]}/f/", bare[0].pid)}
        if nginx is not None:
            servers["nginx (1 worker)"] = (f"http://127.0.0.1:{nginx[1]}/tones/", nginx[0].pid)
        rows: list[Row] = []
        for _ in range(args.rounds):
            for fmt in ("m4r", "3gp"):
                rows += await rush(tmp, orders, servers, fmt, shas[fmt], args.concurrency)
        alone: list[Row] = []
        for fmt in ("m4r", "3gp"):  # one buyer at a time: no queue, the file's own time
            alone += await rush(tmp, orders[:200], servers, fmt, shas[fmt], 1)
    finally:
        for proc in (bare, nginx):
            if proc is not None:
                await stop(proc[0])
        await runner.cleanup()
    report(args, sellout_s, delivery, rows, alone)


Row = tuple[str, str, dict[str, Any]]
DROPROOM = "droproom (signed link)"


async def rush(
    tmp: Path,
    orders: list[dict[str, Any]],
    servers: dict[str, tuple[str, int]],
    fmt: str,
    sha: str,
    concurrency: int,
) -> list[Row]:
    """Each buyer downloads their `fmt` file from droproom (their own signed
    link), then the same number of downloads of the same file from each
    baseline."""
    ours = [d["url"] for o in orders for d in o["receipt"]["downloads"] if d["format"] == fmt]
    name = f"{sha}.{FORMATS[fmt][0]}"
    targets = [(DROPROOM, ours, os.getpid())]
    targets += [(label, [base + name] * len(ours), pid) for label, (base, pid) in servers.items()]
    rows = []
    for label, urls, pid in targets:
        field = "ms" if concurrency > 1 else "service_ms"  # alone: no queue to wait in
        cpu = cpu_seconds(pid)
        result = summary(await run_client(tmp, urls, concurrency), field)
        result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / len(urls)
        if result["statuses"] != [200] or result["sha256"] != [sha]:
            raise RuntimeError(f"{label} .{fmt}: {result['statuses']} {result['sha256']}")
        rows.append((fmt, label, result))
    return rows


def report(
    args: argparse.Namespace,
    sellout_s: float,
    delivery: tuple[list[float], list[float]],
    rows: list[Row],
    alone: list[Row],
) -> None:
    out = sys.stdout
    d, q = (percentiles(sorted(times)) for times in delivery)
    out.write(
        f"delivery rush: {args.buyers} buyers, {args.concurrency} connections, "
        f"{args.rounds} round(s)\n"
        f"sell-out (reserve + freeze + paid transition + links, 50 at once): "
        f"{sellout_s:.2f} s for {args.buyers} orders\n"
        f"paid -> links issued: p50 {d['p50']:.1f} ms, p95 {d['p95']:.1f} ms, "
        f"p99 {d['p99']:.1f} ms ({len(delivery[0])} orders, 50 settling at once)\n"
        f"paid -> links issued, one buyer at a time: p50 {q['p50']:.1f} ms, "
        f"p95 {q['p95']:.1f} ms, p99 {q['p99']:.1f} ms ({len(delivery[1])} orders)\n\n"
    )
    out.write("every round:\n")
    table(out, rows)
    out.write(f"\nmedian over the {args.rounds} round(s):\n")
    table(out, medians(rows))
    out.write("\none buyer at a time (200 downloads, 1 connection):\n")
    table(out, alone)
    if NGINX is None:
        out.write("nginx: not installed (apt-get install -y nginx-light); its rows are skipped\n")


def medians(rows: list[Row]) -> list[Row]:
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for fmt, label, r in rows:
        grouped.setdefault((fmt, label), []).append(r)
    names = ("p50", "p95", "p99", "per_s", "mb_s", "cpu_ms")
    return [
        (fmt, label, {n: statistics.median(r[n] for r in runs) for n in names})
        for (fmt, label), runs in grouped.items()
    ]


def table(out: Any, rows: list[Row]) -> None:
    out.write(
        "| file | server | p50 ms | p95 ms | p99 ms | downloads/s | MB/s | "
        "server CPU ms / download | droproom p99 / this p99 | droproom CPU / this CPU |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
    )
    ours: dict[str, dict[str, Any]] = {}
    for fmt, label, r in rows:
        if label == DROPROOM:
            ours[fmt] = r
        ratio = ours[fmt]["p99"] / r["p99"] if r["p99"] else float("nan")
        cpu = f"{ours[fmt]['cpu_ms'] / r['cpu_ms']:.2f}" if r["cpu_ms"] else "below a tick"
        out.write(
            f"| .{fmt} | {label} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
            f"{r['per_s']:,.0f} | {r['mb_s']:,.0f} | {r['cpu_ms']:.3f} | {ratio:.2f} | "
            f"{cpu} |\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        urls = json.loads(Path(args.client).read_text())
        sys.stdout.write(json.dumps(asyncio.run(download_all(urls, args.concurrency))))
        return
    if args.bare:
        serve_bare(Path(args.bare), args.port)
        return
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(bench(args, Path(d)))


if __name__ == "__main__":
    main()
