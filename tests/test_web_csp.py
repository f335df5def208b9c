"""The pages under their Content-Security-Policy: the headers are on every
response, and the room (buying with Stripe.js, 3-D Secure included) and the
host console run without a single violation."""

import time

import aiohttp
import pytest
from playwright.async_api import Page, expect

from server.csp import Sources, policy
from tests.browser import PHONE, Browsers, Tab, browsers, fill_shipping
from tests.harness import Harness

__all__ = ["browsers"]

ROOM = "csp"
TEE = {"id": "tee", "title": "Tour tee", "price": 499, "currency": "usd", "kind": "physical"}

# Every violation the page reports, also those the console would not show.
COLLECT_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`);
});
"""


def _directives(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split("; ")}


def test_policy_follows_the_configuration() -> None:
    stripe = _directives(
        policy(Sources("https://shop.example", "https://js.stripe.com/v3/", ("https://cdn.x",)))
    )
    assert "https://js.stripe.com" in stripe["script-src"]
    assert "https://hooks.stripe.com" in stripe["frame-src"]
    assert "https://api.stripe.com" in stripe["connect-src"]
    assert "wss://shop.example" in stripe["connect-src"]
    assert "https://cdn.x" in stripe["media-src"] and "blob:" in stripe["media-src"]
    assert stripe["frame-ancestors"] == ["'none'"] and stripe["style-src"] == ["'self'"]
    local = _directives(policy(Sources("http://127.0.0.1:8080", "http://127.0.0.1:9/js/v3/")))
    assert local["script-src"] == ["'self'", "http://127.0.0.1:9"]
    assert "ws://127.0.0.1:8080" in local["connect-src"]
    assert "'unsafe-inline'" not in str(local)


async def test_every_response_forbids_framing_and_sniffing(server: Harness) -> None:
    await server.create_room(id=ROOM, title="Headers")
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/api/v1/config") as resp:
            js = (await resp.json())["stripe_js_url"]
        pages = ("/", f"/r/{ROOM}", f"/host/{ROOM}", "/signin", "/me")
        for path in (*pages, "/static/css/app.css", "/api/v1/rooms"):
            async with http.get(server.url + path) as resp:
                assert resp.status == 200, path
                assert resp.headers["X-Frame-Options"] == "DENY"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                csp = _directives(resp.headers["Content-Security-Policy"])
                assert csp["frame-ancestors"] == ["'none'"]
                assert js.startswith(csp["script-src"][1])  # the embedded localstripe


async def _open(browsers: Browsers, url: str, **kw: object) -> Tab:
    tab = await browsers.open(None, **kw)  # type: ignore[arg-type]
    await tab.page.add_init_script(COLLECT_VIOLATIONS)
    await tab.page.goto(url)
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    return tab


async def _violations(tab: Tab) -> list[str]:
    seen: list[str] = await tab.page.evaluate("window.__violations")
    return seen + [e for e in tab.errors if "Content Security Policy" in e]


async def _pay(page: Page, number: str) -> None:
    drop = page.locator(".drop").filter(has_text="Tour tee")
    await drop.get_by_role("button", name="Buy now").click()
    drawer = page.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Checkout").click()
    await fill_shipping(drawer)
    await drawer.get_by_role("button", name="Continue to payment").click()
    card = page.locator("#card-element")
    for field, value in (("number", number), ("exp_month", "12"), ("exp_year", "34")):
        await card.get_by_placeholder(field).fill(value)
    await card.get_by_placeholder("cvc").fill("123")
    await card.get_by_placeholder("postal_code").fill("94110")
    await page.get_by_role("button", name="Pay $4.99").click()


@pytest.mark.browser
async def test_room_and_host_pages_run_without_violations(
    server: Harness, browsers: Browsers
) -> None:
    await server.create_room(id=ROOM, title="Strict")
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    host = await _open(
        browsers, f"{server.url}/host/{ROOM}#token={server.token(ROOM, 'h', 'host')}"
    )
    mod = await server.connect(ROOM, "mo", "moderator")
    now = time.time()
    drop = {"product_id": "tee", "starts_at": now, "ends_at": now + 600, "stock": 5}
    assert (await mod.call("drop:schedule", drop))["ok"]
    room = await _open(
        browsers, f"{server.url}/r/{ROOM}#token={server.token(ROOM, 'lee')}", viewport=PHONE
    )
    await _pay(room.page, "4000002500003155")  # 3-D Secure: localstripe's modal
    await room.page.get_by_role("button", name="Complete authentication").click()
    await expect(room.page.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)
    await expect(host.page.get_by_role("list", name="Orders")).to_contain_text("paid")
    assert await _violations(room) == []
    assert await _violations(host) == []
    # The collector does see a violation when there is one.
    await room.page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<img src=\"https://example.invalid/x.png\">')"
    )
    for _ in range(50):
        if await _violations(room):
            break
        await room.page.wait_for_timeout(100)
    assert "img-src https://example.invalid/x.png" in await _violations(room)


async def test_the_favicon_is_served(server: Harness) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/favicon.ico") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/svg+xml"
        assert (await resp.text()).startswith("<svg")


@pytest.mark.browser
async def test_pages_load_without_a_missing_file(server: Harness, browsers: Browsers) -> None:
    await server.create_room(id=ROOM, title="Complete", guests=True)
    tab = await browsers.open(None)
    missing: list[str] = []
    tab.page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    host = f"/host/{ROOM}#token={server.token(ROOM, 'h', 'host')}"
    for path in ("/", f"/r/{ROOM}", host, "/me", "/signin"):
        await tab.page.goto(server.url + path)
        await tab.page.wait_for_load_state("networkidle")
    assert missing == []
    icon = await tab.page.evaluate("document.querySelector('link[rel=icon]')?.href")
    assert icon == server.url + "/static/favicon.svg"
