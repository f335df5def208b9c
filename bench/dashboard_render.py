"""What one `stats:updated` costs the host's page: the dashboard
(web_client/static/js/panels/dashboard.js: tiles, the drops table, two uPlot
charts) re-rendered in headless Chromium as the event goes on, against a
baseline measured in the same run (an empty payload: the same code with
nothing to draw). Payloads follow docs/protocol.md ("Event numbers"); the
listeners chart grows by one reading per update up to the page's 1800.

    python bench/dashboard_render.py [--updates 1800] [--drops 20]

Prints ms per update (median and p95) at a few points of the event, the
ratio to the baseline, and the share of the 2 s between two updates.
Everything it starts (a static file server on 127.0.0.1, Chromium) stops
when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.web import STATIC_DIR, VENDOR_FILES  # noqa: E402
from tests.browser import ARGS, CHROMIUM  # noqa: E402

INTERVAL_MS = 2000
PAGE = "<!doctype html><meta charset=utf-8><link rel=stylesheet href=/static/css/app.css><body>"

# Runs in the page: mount the dashboard with a stand-in connection, then time
# `updates` renders of growing payloads; returns ms per update.
RUN = """async ({ updates, drops, empty }) => {
  const { mountDashboard } = await import("/static/js/panels/dashboard.js");
  const root = document.createElement("section");
  document.body.append(root);
  let handler = null;
  const conn = { on: (event, fn) => { if (event === "stats:updated") handler = fn; } };
  const store = { clock: { now: () => Date.now() / 1000 }, state: { room: null } };
  mountDashboard(root, { store, conn });
  const t0 = 1764750000;
  const times = [];
  for (let i = 0; i < updates; i++) {
    const at = t0 + 2 * i;
    const minute = at - (at % 60);
    const minutes = Array.from({ length: Math.floor(i / 30) + 1 }, (_, m) => ({
      t: t0 - (t0 % 60) + 60 * m, listeners: 100 + m, buyers: m % 7, rate: (m % 7) / (100 + m) }));
    const payload = empty ? {} : {
      room: "bench", at,
      listeners: { now: 100 + (i % 50), peak: 150, unique: 400 + i },
      joins_per_minute: [{ t: minute, n: i % 13 }],
      orders: { paid: i, failed: i >> 4, refunded: i >> 6 },
      revenue: { USD: 499 * i, EUR: 250 * i },
      conversion: { overall: 0.12, per_minute: minutes },
      drops: Array.from({ length: drops }, (_, d) => ({ id: `d${d}`, product_id: `p${d}`,
        stock: 100, sold: Math.min(100, i % 101), sell_through: Math.min(1, (i % 101) / 100),
        sold_out_after_s: i % 101 >= 100 ? 95 : null })),
      delivery_ms: { p50: 3.1, p95: 8, p99: 12.5 },
      refund_rate: 0.02,
      audio: { listeners_connected: 100, packet_loss: 0.01 },
    };
    const start = performance.now();
    handler(payload);
    // uPlot draws in a microtask after setData: wait for it (a message-channel
    // turn, not a clamped timer), then for the layout of what changed.
    await new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = resolve;
      ch.port2.postMessage(0);
    });
    void root.offsetHeight;
    times.push(performance.now() - start);
  }
  return times;
}"""


async def serve() -> tuple[web.AppRunner, str]:
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app.router.add_get("/", page)
    app.router.add_static("/static/", STATIC_DIR)

    async def vendor(request: web.Request) -> web.FileResponse:
        return web.FileResponse(VENDOR_FILES[request.match_info["name"]])

    app.router.add_get("/vendor/{name}", vendor)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/"


async def measure(url: str, updates: int, drops: int, empty: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS
            )
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                await page.goto(url)
                args: dict[str, Any] = {"updates": updates, "drops": drops, "empty": empty}
                times: list[float] = await page.evaluate(RUN, args)
                return times
            finally:
                await context.close()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1800)
    parser.add_argument("--drops", type=int, default=20)
    opts = parser.parse_args()
    runner, url = await serve()
    try:
        base = await measure(url, opts.updates, opts.drops, empty=True)
        full = await measure(url, opts.updates, opts.drops, empty=False)
    finally:
        await runner.cleanup()
    base_median = statistics.median(base)
    print(f"dashboard render per stats:updated ({opts.drops} drops), headless Chromium")
    print(
        f"{'updates so far':>15} {'median ms':>10} {'p95 ms':>8} {'x baseline':>11} {'% of 2 s':>9}"
    )
    n = len(full)
    rows = [("empty payload", base), ("1-100", full[:100])]
    rows += [("900-1000", full[900:1000]), (f"{n - 100}-{n}", full[n - 100 :])]
    for name, window in rows:
        if not window:
            continue
        med = statistics.median(window)
        ratio = med / base_median
        share = 100 * med / INTERVAL_MS
        print(f"{name:>15} {med:>10.2f} {p95(window):>8.2f} {ratio:>11.1f} {share:>8.2f}%")


if __name__ == "__main__":
    asyncio.run(main())
