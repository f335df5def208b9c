"""Browser tests of the replay page (/replay/{room}/{id}): after a real
recording with a pin and two drops made during it, the page shows each
moment's product when the audio element reaches it; a drop still live is
bought through the page (Stripe Elements against localstripe) and ends in a
paid order; an ended drop offers no buying. A guest room's replay link works
without a token; a room without guests says what is needed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser import Browsers, browsers, fill_shipping, pay_with
from tests.harness import Harness
from tests.test_replays import drop, pin, poll, record
from tests.test_web_csp import COLLECT_VIOLATIONS

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "rewind"
TEE = {"id": "tee", "title": "Tour tee", "price": 499, "currency": "usd", "kind": "physical"}
CAP = {"id": "cap", "title": "Night cap", "price": 1500, "currency": "usd", "kind": "physical"}


async def _replay(server: Harness, guests: bool) -> dict[str, Any]:
    """A ~5.5 s recording: tee pinned at ~1 s, a tee drop (10 min) at ~2 s,
    a cap drop over in 1.5 s at ~3 s, a poll at ~4 s."""
    await server.create_room(id=ROOM, title="Night market", guests=guests)
    for product in (TEE, CAP):
        await server.admin_post("/api/v1/products", {**product, "stock": 20})
    actions = {
        "pin": pin("tee", note="Signed by the band"),
        "drop": drop("tee", 600),
        "short": drop("cap", 1.5),
        "poll": poll("Which colour next?", ["Black", "Sand"]),
    }
    await record(server, ROOM, actions)
    token = server.token(ROOM, "lara", "listener")
    status, body = await server.request("GET", f"/api/v1/rooms/{ROOM}/replays", token=token)
    assert status == 200, body
    (replay,) = body["replays"]
    assert [m["type"] for m in replay["moments"]] == ["pin", "drop", "drop", "poll"]
    return dict(replay)


async def _seek(page: Page, t: float) -> None:
    audio = page.locator("#replay-audio")
    # a function, not an expression: polling an expression needs eval, which the CSP refuses
    await page.wait_for_function("() => document.querySelector('#replay-audio').readyState >= 1")
    await audio.evaluate("(a, t) => { a.currentTime = t; }", t)


async def test_replay_shows_the_moment_and_buys_from_it(
    server: Harness, browsers: Browsers
) -> None:
    replay = await _replay(server, guests=True)
    pin_m, drop_m, short_m, poll_m = replay["moments"]
    # A guest room: the public link, no token.
    tab = await browsers.open(None)
    page = tab.page
    await page.add_init_script(COLLECT_VIOLATIONS)
    await page.goto(f"{server.url}/replay/{ROOM}/{replay['id']}")
    await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    moments = page.get_by_role("list", name="Moments")
    await expect(moments.get_by_role("listitem")).to_have_count(4)
    await expect(moments).to_contain_text("Pinned")
    await expect(moments).to_contain_text("Which colour next?")
    await expect(page.locator("#share-link")).to_have_value(
        f"{server.url}/replay/{ROOM}/{replay['id']}"
    )
    now = page.get_by_role("region", name="In the replay now")
    await expect(now.get_by_role("article")).to_have_count(0)

    await _seek(page, pin_m["t"] + 0.2)
    card = now.get_by_role("article", name="Tour tee")
    await expect(card).to_contain_text("Pinned at")
    await expect(card).to_contain_text("Signed by the band")
    await expect(card).to_contain_text("$4.99")
    await expect(card.get_by_role("button", name="Buy: Tour tee")).to_be_visible()

    await _seek(page, short_m["t"] + 0.2)  # the cap drop ended long ago
    card = now.get_by_role("article", name="Night cap")
    await expect(card).to_contain_text("This drop has ended.")
    await expect(card.locator(".moment-buy")).to_have_count(1)
    await expect(card.locator(".moment-buy")).to_be_hidden()

    await _seek(page, poll_m["t"] + 0.2)
    await expect(now.get_by_role("article", name="Which colour next?")).to_contain_text("Black")

    # Clicking a moment of the list seeks there.
    await moments.get_by_role("button", name=re.compile(r"^Drop at .*Tour tee")).click()
    card = now.get_by_role("article", name="Tour tee")
    await expect(card).to_contain_text("Live now")
    await expect(card).to_contain_text("3 left")
    position = await page.locator("#replay-audio").evaluate("a => a.currentTime")
    assert position == pytest.approx(drop_m["t"], abs=1.0)
    await page.locator("#replay-audio").evaluate("a => a.pause()")
    await _seek(page, drop_m["t"] + 0.2)
    await tab.screenshot("replay", full_page=False)

    await card.get_by_role("button", name="Buy now: Tour tee").click()
    drawer = page.get_by_role("complementary", name="Your cart")
    await expect(drawer).to_be_visible()
    await drawer.get_by_role("button", name="Checkout").click()
    await expect(drawer.get_by_text("Amount: $4.99")).to_be_visible()
    await drawer.get_by_label("Email (optional)").fill("lee@example.com")
    await fill_shipping(drawer, country="FR", name="Lee Buyer")
    await drawer.get_by_role("button", name="Continue to payment").click()
    await expect(drawer.locator("#card-element input").first).to_be_visible()
    await pay_with(page)
    receipt = page.locator(".receipt")
    await expect(receipt).to_contain_text("Payment received", timeout=20_000)
    await expect(receipt).to_contain_text("1 × Tour tee")
    await expect(card).to_contain_text("2 left")

    guest = await page.evaluate("new URLSearchParams(location.hash.slice(1)).get('token')")
    status, body = await server.request("GET", "/api/v1/me/orders", token=guest)
    assert status == 200, body
    (order,) = body["orders"]
    assert order["status"] == "paid" and order["total"] == 499
    assert order["lines"][0]["drop_id"] == drop_m["drop_id"]
    assert tab.script_errors() == []
    assert await page.evaluate("window.__violations") == []  # the page keeps to its CSP

    # The host console lists the replay with its public link to share.
    host_token = server.token(ROOM, "hana", "host")
    host = await browsers.open(f"{server.url}/host/{ROOM}#token={host_token}")
    replays = host.page.get_by_role("list", name="Replays")
    link = replays.get_by_role("link", name=re.compile(r"^Replay of .* · 4 moments$"))
    await expect(link).to_have_attribute("href", f"/replay/{ROOM}/{replay['id']}")
    await expect(replays.get_by_role("button", name=re.compile("^Copy the link"))).to_be_visible()


async def test_a_room_without_guests_needs_its_token(server: Harness, browsers: Browsers) -> None:
    replay = await _replay(server, guests=False)
    url = f"{server.url}/replay/{ROOM}/{replay['id']}"
    tab = await browsers.open(url)
    gate = tab.page.get_by_role("alert")
    await expect(gate).to_contain_text("for the room's members only")
    await expect(gate).to_contain_text("sign in")
    await expect(tab.page.locator("main")).to_be_hidden()

    token = server.token(ROOM, "lee", "listener", name="Lee")
    invited = await browsers.open(f"{url}?token={token}")
    page = invited.page
    await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    assert "token" not in page.url.split("#")[0]  # moved out of the query
    await expect(page.locator("#share-text")).to_contain_text("Only the room's members")
    await expect(page.locator("#share-row")).to_be_hidden()
    await _seek(page, replay["moments"][0]["t"] + 0.2)
    now = page.get_by_role("region", name="In the replay now")
    await expect(now.get_by_role("article", name="Tour tee")).to_contain_text("$4.99")
    assert invited.script_errors() == []

    # From the room page: the replay's link carries this listener's token.
    room = await browsers.open(f"{server.url}/r/{ROOM}#token={token}")
    replays = room.page.get_by_role("list", name="Replays")
    await replays.get_by_role("link", name=re.compile("^Replay of")).click()
    await expect(room.page).to_have_url(re.compile(f"/replay/{ROOM}/"))
    header = room.page.locator("header").get_by_role("status")
    await expect(header).to_have_text("Connected")
    moments = room.page.get_by_role("list", name="Moments")
    await expect(moments.get_by_role("listitem")).to_have_count(4)
