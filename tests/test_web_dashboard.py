"""Browser tests of the event numbers in the host console (issue 13): the
live dashboard moves when a listener buys (the next `stats:updated`), the
Orders panel lists the sale and its CSV download holds it, the report and a
drop's log are shown. The dashboard's rendering is also driven directly with
payloads of the contract's shape, whole and with fields missing."""

import csv
import io
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.async_api import Locator, Page, expect

from server import tokens
from server.config import Settings
from server.roles import Role
from tests.browser import PHONE, SCREENSHOTS, Browsers, Tab, browsers, fill_shipping, pay_with
from tests.harness import Harness
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer, code_in, exchange

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "numbers"
TEE = {"id": "tee", "title": "Tour tee", "price": 499, "currency": "usd", "kind": "physical"}

# `stats:updated` as docs/protocol.md "Event numbers" spells it: the report
# plus the audio health.
AT = 1764750000.0
MINUTE = AT - AT % 60
STATS: dict[str, Any] = {
    "room": "x",
    "at": AT,
    "listeners": {"now": 42, "peak": 57, "unique": 80},
    "joins_per_minute": [{"t": MINUTE - 60, "n": 9}, {"t": MINUTE, "n": 6}],
    "orders": {"paid": 12, "failed": 1, "refunded": 1},
    "revenue": {"USD": 5988, "JPY": 500},
    "conversion": {
        "overall": 0.15,
        "per_minute": [
            {"t": MINUTE - 60, "listeners": 40, "buyers": 4, "rate": 0.1},
            {"t": MINUTE, "listeners": 40, "buyers": 10, "rate": 0.25},
        ],
    },
    "drops": [
        {
            "id": "d1",
            "product_id": "tee",
            "stock": 20,
            "sold": 20,
            "held": 0,
            "remaining": 0,
            "sell_through": 1.0,
            "starts_at": AT - 600,
            "sold_out_after_s": 95,
        },
        {
            "id": "d2",
            "product_id": "cap",
            "stock": 10,
            "sold": 3,
            "held": 1,
            "remaining": 6,
            "sell_through": 0.3,
            "starts_at": AT - 300,
            "sold_out_after_s": None,
        },
    ],
    "delivery_ms": {"p50": 120, "p95": 640, "p99": 1800},
    "refund_rate": 0.0833,
    "audio": {"listeners_connected": 42, "packet_loss": 0.004},
}


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: SmtpServer) -> Settings:
    """Sign-in links go to a real SMTP server the test reads (creators)."""
    return make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url)


# A page-side harness: mount the dashboard into the page with a stand-in
# connection whose `stats:updated` handler the test calls.
MOUNT = """async () => {
  const { mountDashboard } = await import("/static/js/panels/dashboard.js");
  const root = document.createElement("section");
  root.id = "dash";
  document.body.append(root);
  const handlers = {};
  const conn = { on: (event, fn) => (handlers[event] = fn) };
  const store = { clock: { now: () => Date.now() / 1000 }, state: { room: null } };
  mountDashboard(root, { room: "x", store, conn, tokenOf: () => "", role: "moderator" });
  window.__stats = (payload) => handlers["stats:updated"](payload);
}"""


async def _size(locator: Locator) -> tuple[float, float]:
    box = await locator.bounding_box()
    assert box is not None
    return box["width"], box["height"]


def tile(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_role("group", name=name, exact=True)


async def test_the_dashboard_reads_a_payload_and_survives_missing_fields(
    server: Harness, browsers: Browsers
) -> None:
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    tab = await browsers.open(server.url + "/")
    page = tab.page
    await page.evaluate(MOUNT)
    await expect(tile(page, "Revenue")).to_contain_text("–")
    await page.evaluate("(s) => window.__stats(s)", STATS)
    await expect(tile(page, "Listeners now")).to_contain_text("42")
    await expect(tile(page, "Listeners now")).to_contain_text("peak 57")
    await expect(tile(page, "Joins per minute")).to_contain_text("6")
    await expect(tile(page, "Orders")).to_contain_text("12")
    await expect(tile(page, "Revenue")).to_contain_text(re.compile(r"\$59\.88\s*\+ ¥500"))
    await expect(tile(page, "Conversion per minute")).to_contain_text("25%")
    await expect(tile(page, "Conversion per minute")).to_contain_text("overall 15%")
    await expect(tile(page, "Refund rate")).to_contain_text("8.3%")
    await expect(tile(page, "Delivery p95")).to_contain_text("640 ms")
    await expect(tile(page, "Delivery p99")).to_contain_text("1.8 s")
    await expect(tile(page, "Audio health")).to_contain_text("Good")
    drops = page.get_by_role("table", name="Sell-through per drop")
    await expect(drops.get_by_role("row", name=re.compile("Tour tee"))).to_contain_text(
        "sold out after 1 min 35 s"
    )
    await expect(drops).to_contain_text("3 of 10")
    # A drop that sells out while the host watches is said aloud, once; one
    # sold out before the page opened is not.
    cap = {**STATS["drops"][1], "sold": 10, "sell_through": 1.0, "sold_out_after_s": 120}
    await page.evaluate("(s) => window.__stats(s)", {**STATS, "drops": [STATS["drops"][0], cap]})
    spoken = page.locator(".visually-hidden[aria-live=polite]")
    await expect(spoken).to_have_text("cap sold out after 2 min")
    size = await _size(tile(page, "Revenue"))

    # Fields missing, null or of the wrong type: dashes, no error, no jump.
    partials: tuple[dict[str, Any], ...] = (
        {},
        {"orders": None, "revenue": "x", "drops": [{}]},
        {"conversion": {"per_minute": [{"t": 1}]}},
    )
    for partial in partials:
        await page.evaluate("(s) => window.__stats(s)", partial)
        await expect(tile(page, "Revenue")).to_contain_text("–")
    assert await _size(tile(page, "Revenue")) == size
    await expect(page.get_by_role("img", name=re.compile("^Listeners over time"))).to_be_visible()
    assert tab.script_errors() == []


async def test_the_dashboard_fits_a_phone(server: Harness, browsers: Browsers) -> None:
    tab = await browsers.open(server.url + "/", viewport=PHONE)
    page = tab.page
    await page.evaluate(MOUNT)
    await page.evaluate("(s) => window.__stats(s)", STATS)
    await expect(tile(page, "Revenue")).to_contain_text("$59.88")
    # Two tiles a row, nothing wider than the screen (no sideways scrolling).
    first = await tile(page, "Listeners now").bounding_box()
    second = await tile(page, "Peak listeners").bounding_box()
    assert first and second and first["y"] == second["y"] and second["x"] > first["x"]
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    assert tab.script_errors() == []


async def _sale_setup(server: Harness) -> str:
    """A live room with a live drop of tees; returns the drop's id."""
    await server.create_room(id=ROOM, title="Night market")
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    host = await server.connect(ROOM, "hana-socket", "host", name="Hana")
    answer = await host.call("room:update", {"live": True})
    assert answer["ok"], answer
    now = time.time()
    payload = {"product_id": "tee", "starts_at": now, "ends_at": now + 600, "stock": 5}
    answer = await host.call("drop:schedule", payload)
    assert answer["ok"], answer
    return str(answer["drop"]["id"])


async def _buy_a_tee(room: Page) -> None:
    drop = room.locator(".drop").filter(has_text="Tour tee")
    await drop.get_by_role("button", name="Buy now").click()
    drawer = room.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Checkout").click()
    await drawer.get_by_label("Email (optional)").fill("lee@example.com")
    await fill_shipping(drawer, country="FR", name="Lee Buyer")
    await drawer.get_by_role("button", name="Continue to payment").click()
    await expect(drawer.locator("#card-element input").first).to_be_visible()
    await pay_with(room)
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)


async def _open(server: Harness, browsers: Browsers, path: str, token: str, **kw: Any) -> Tab:
    tab = await browsers.open(f"{server.url}{path}#token={token}", **kw)
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    return tab


async def test_a_sale_moves_the_dashboard_and_lands_in_the_orders(
    server: Harness, browsers: Browsers
) -> None:
    drop_id = await _sale_setup(server)
    host_tab = await _open(
        server, browsers, f"/host/{ROOM}", server.token(ROOM, "hana", "host", name="Hana")
    )
    host = host_tab.page
    room_tab = await _open(
        server, browsers, f"/r/{ROOM}", server.token(ROOM, "lee", name="Lee"), viewport=PHONE
    )
    dashboard = host.get_by_role("region", name="Live numbers")
    await expect(dashboard.locator(".dash-status")).to_contain_text(
        "Live · updated", timeout=10_000
    )
    await expect(tile(dashboard, "Listeners now")).to_contain_text(re.compile(r"[1-9]"))
    await expect(tile(dashboard, "Orders")).to_contain_text(re.compile(r"^Orders\s*0"))

    await _buy_a_tee(room_tab.page)
    # The next `stats:updated` (every 2 s) carries the sale.
    await expect(tile(dashboard, "Orders")).to_contain_text(
        re.compile(r"^Orders\s*1"), timeout=10_000
    )
    await expect(tile(dashboard, "Revenue")).to_contain_text("$4.99")
    drops = dashboard.get_by_role("table", name="Sell-through per drop")
    await expect(drops.get_by_role("row", name=re.compile("Tour tee"))).to_contain_text("1 of 5")

    orders = host.get_by_role("region", name="Orders")
    row = orders.get_by_role("row", name=re.compile("Lee"))
    await expect(row).to_contain_text("$4.99", timeout=10_000)
    await expect(row).to_contain_text("paid")
    show = orders.get_by_label("Show")
    await show.select_option("refunded")
    await expect(orders.get_by_role("status")).to_have_text("No refunded orders yet.")
    await expect(row).to_be_hidden()
    await show.select_option("paid")
    await expect(orders.get_by_role("status")).to_have_text("1 paid order")
    await expect(row).to_contain_text("$4.99")
    async with host.expect_download() as info:
        await orders.get_by_role("button", name="Download CSV").click()
    download = await info.value
    rows = list(csv.reader(io.StringIO((await download.path()).read_text())))
    assert any("paid" in r and any("4.99" in c or c == "499" for c in r) for r in rows[1:]), rows

    report = host.get_by_role("region", name="Report")
    await report.get_by_role("button", name="Refresh report").click()
    await expect(report.locator(".fact").filter(has_text="Paid orders")).to_contain_text("1")
    await expect(report.locator(".fact").filter(has_text="Revenue")).to_contain_text("$4.99")
    async with host.expect_download() as info:
        await report.get_by_role("button", name="Download report CSV").click()
    report_csv = list(csv.reader(io.StringIO((await (await info.value).path()).read_text())))
    assert ["orders", "paid", "1"] in report_csv, report_csv
    image = report.get_by_role("img", name=re.compile("^Event report"))
    await expect(image).to_be_visible()
    assert await image.evaluate("(img) => img.naturalWidth") > 0

    log = host.get_by_role("region", name="Drop log")
    await log.get_by_label("Drop", exact=True).select_option(drop_id)
    await log.get_by_role("button", name="Show log").click()
    await expect(log.get_by_role("status")).to_contain_text("Chain verified")
    await expect(log.get_by_role("list", name="Log entries").locator("li").first).to_be_visible()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # The sticky header would cover the top of a panel's picture.
    await host.evaluate("document.querySelector('.topbar').style.position = 'static'")
    await dashboard.screenshot(path=str(SCREENSHOTS / "dashboard.png"))
    await report.screenshot(path=str(SCREENSHOTS / "report.png"))
    await log.screenshot(path=str(SCREENSHOTS / "drop-log.png"))
    assert host_tab.script_errors() == []


async def _creator(server: Harness, smtp: SmtpServer, address: str) -> str:
    """An invited creator, signed in through the mailed link: their account token."""
    status, _ = await server.request(
        "POST", "/api/v1/creators", json={"email": address, "name": "Mia"}, admin=True
    )
    assert status == 200
    mails = await smtp.inbox.wait_for(1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200, body
    return str(body["token"])


async def test_the_owner_sees_buyers_emails_in_the_orders_and_their_csv(
    server: Harness, browsers: Browsers, smtp: SmtpServer
) -> None:
    """A creator opens the console of their own room (a room token for their
    account, their account token kept by the browser): the Orders panel asks
    as the owner, so the buyer's email shows and is in the CSV."""
    account = await _creator(server, smtp, "mia@example.com")
    status, made = await server.request(
        "POST", "/api/v1/rooms", json={"id": ROOM, "title": "Mia's shop"}, token=account
    )
    assert status == 201, made
    status, made = await server.request(
        "POST", "/api/v1/products", json={**TEE, "stock": 20}, token=account
    )
    assert status == 201, made  # the creator's room drops only the creator's products
    mod = await server.connect(ROOM, "mo", "moderator")
    now = time.time()
    drop = {"product_id": "tee", "starts_at": now, "ends_at": now + 600, "stock": 5}
    drop_id = (await mod.call("drop:schedule", drop))["drop"]["id"]
    buyer = await server.connect(ROOM, "ann", name="Ann")
    assert (await buyer.call("cart:add", {"drop_id": drop_id, "qty": 1}))["ok"]
    ship = {"name": "Ann", "line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"}
    payload = {"payment_method": "pm_card_visa", "email": "ann@example.com", "shipping": ship}
    assert (await buyer.call("checkout:start", payload))["ok"]
    await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 15)
    claims = jwt.decode(account, options={"verify_signature": False})
    # The console's room token for the creator's account, as host (what the
    # studio's "Open host console" gets from `/join` in the owner's room).
    room_token = tokens.mint(
        server.settings.secret,
        room=ROOM,
        identity=claims["sub"],
        role=Role.HOST,
        name="Mia",
        ttl_s=3600,
        now=time.time(),
        gen=claims["gen"],
    )

    tab = await browsers.open(server.url + "/")
    await tab.page.evaluate(
        "(t) => localStorage.setItem('droproom.account', t)", json.dumps(account)
    )
    tab = await _open_in(tab, f"{server.url}/host/{ROOM}#token={room_token}")
    host = tab.page
    # The room never went live: the dashboard shows the totals from the snapshot.
    dashboard = host.get_by_role("region", name="Live numbers")
    await expect(dashboard.locator(".dash-status")).to_have_text(
        "The room is not live: these are the event's totals."
    )
    await expect(tile(dashboard, "Orders")).to_contain_text(re.compile(r"^Orders\s*1"))
    await expect(tile(dashboard, "Revenue")).to_contain_text("$4.99")
    orders = host.get_by_role("region", name="Orders")
    row = orders.get_by_role("row", name=re.compile("Ann"))
    await expect(row).to_contain_text("ann@example.com")
    await expect(row).to_contain_text("$4.99")
    async with host.expect_download() as info:
        await orders.get_by_role("button", name="Download CSV").click()
    text = (await (await info.value).path()).read_text()
    assert "ann@example.com" in text, text

    # Without the account (signed out) the same console gets no emails.
    await host.evaluate("localStorage.removeItem('droproom.account')")
    await orders.get_by_role("button", name="Refresh").click()
    await expect(row).to_contain_text("$4.99")
    await expect(row).not_to_contain_text("ann@example.com")
    await host.evaluate("(t) => localStorage.setItem('droproom.account', t)", json.dumps(account))
    await orders.get_by_role("button", name="Refresh").click()
    await expect(row).to_contain_text("ann@example.com")
    await host.evaluate("document.querySelector('.topbar').style.position = 'static'")
    await orders.screenshot(path=str(SCREENSHOTS / "orders.png"))
    assert tab.script_errors() == []


async def _open_in(tab: Tab, url: str) -> Tab:
    await tab.page.goto(url)
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    return tab
