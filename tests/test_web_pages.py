"""Browser tests of the pages themselves: the lobby, joining by link and as
a guest, the token kept out of requests, and the server's static routes."""

import re

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser import PHONE, Browsers, browsers
from tests.harness import Harness

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]


async def test_lobby_lists_live_and_upcoming_rooms(server: Harness, browsers: Browsers) -> None:
    await server.create_room(id="jazz", title="Late night jazz", guests=True)
    await server.create_room(id="talk", title="Sunday talk")
    status, _ = await server.request("PATCH", "/api/v1/rooms/jazz", json={"live": True}, admin=True)
    assert status == 200
    tab = await browsers.open(server.url + "/")
    live = tab.page.get_by_role("region", name="Live now")
    upcoming = tab.page.get_by_role("region", name="Coming up")
    await expect(live.get_by_role("link", name="Late night jazz")).to_be_visible()
    await expect(upcoming.get_by_role("link", name="Sunday talk")).to_be_visible()
    await expect(live.get_by_text("Sunday talk")).to_have_count(0)
    await tab.screenshot("lobby")
    await tab.page.get_by_label("Room link or id").fill("jazz")
    await tab.page.get_by_role("button", name="Join").click()
    await expect(tab.page).to_have_url(re.compile(r"/r/jazz$"))
    assert tab.script_errors() == []


async def test_guest_joins_by_name_and_token_stays_in_fragment(
    server: Harness, browsers: Browsers
) -> None:
    await server.create_room(id="open", title="Open house", guests=True)
    requests: list[str] = []
    tab = await browsers.open(server.url + "/r/open", viewport=PHONE)
    tab.page.on("request", lambda r: requests.append(r.url))
    await tab.page.get_by_label("Your name").fill("Dana")
    await tab.page.get_by_role("button", name="Join").click()
    await expect(tab.page.get_by_role("heading", name="Open house")).to_be_visible()
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    assert "#token=" in tab.page.url
    token = tab.page.url.split("#token=")[1]
    assert not [u for u in requests if token in u]
    # A reload keeps the guest's identity (the token is in the fragment).
    await tab.page.reload()
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    await expect(tab.page.get_by_label("Your name")).to_be_hidden()
    assert tab.script_errors() == []


async def test_invite_only_room_asks_for_the_link(server: Harness, browsers: Browsers) -> None:
    await server.create_room(id="vip", title="Members only")
    tab = await browsers.open(server.url + "/r/vip")
    await expect(tab.page.get_by_role("alert")).to_contain_text("invite only")
    await expect(tab.page.get_by_label("Your name")).to_be_hidden()


async def test_refused_tokens_are_explained(server: Harness, browsers: Browsers) -> None:
    await server.create_room(id="a", title="Room A")
    await server.create_room(id="b", title="Room B")
    expired = server.token("a", "eve", ttl_s=-60)
    tab = await browsers.open(f"{server.url}/r/a#token={expired}")
    await expect(tab.page.get_by_role("alert")).to_contain_text("could not join")
    other_room = server.token("b", "eve")
    await tab.page.goto(f"{server.url}/r/a#token={other_room}")
    await tab.page.reload()
    await expect(tab.page.get_by_role("alert")).to_contain_text("another room")


async def test_static_routes(server: Harness) -> None:
    async with aiohttp.ClientSession() as http:
        for path, kind in [
            ("/", "text/html"),
            ("/r/x", "text/html"),
            ("/host/x", "text/html"),
            ("/static/js/room_page.js", "javascript"),
            ("/static/css/app.css", "text/css"),
            ("/vendor/socket.io.esm.min.js", "javascript"),
        ]:
            async with http.get(server.url + path) as resp:
                assert resp.status == 200, path
                assert kind in resp.headers["Content-Type"], path
        for path in ["/vendor/package.json", "/static/../package.json"]:
            async with http.get(server.url + path) as resp:
                assert resp.status == 404, path
        async with http.get(server.url + "/api/v1/config") as resp:
            config = await resp.json()
    # The embedded localstripe's Stripe.js (Stripe's own when keys are set).
    assert config["stripe_js_url"].startswith("http://127.0.0.1:")
    assert config["stripe_js_url"].endswith("/js.stripe.com/v3/")
    assert config["ice_servers"] == []


UNLABELLED = """
() => {
  const named = (el) =>
    (el.labels && el.labels.length > 0) ||
    el.getAttribute("aria-label") ||
    el.getAttribute("aria-labelledby") ||
    (el.tagName === "BUTTON" && el.textContent.trim());
  return [...document.querySelectorAll("input, select, textarea, button, meter")]
    .filter((el) => !el.closest("#card-element") && !named(el))
    .map((el) => el.outerHTML);
}
"""

FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


async def test_phone_keyboard_and_labels(server: Harness, browsers: Browsers) -> None:
    """On a phone-sized screen nothing scrolls sideways; every control has a
    name for assistive technology; the cart drawer works from the keyboard."""
    await server.create_room(id="live", title="Phone check")
    await server.admin_post(
        "/api/v1/products",
        {"id": "cap", "title": "Cap", "price": 1500, "currency": "eur", "kind": "physical"},
    )
    mod = await server.connect("live", "mo", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "cap"}))["ok"]
    assert (await mod.call("poll:create", {"question": "Loud?", "options": ["Yes", "No"]}))["ok"]

    listener = server.token("live", "lee", "listener")
    tab = await browsers.open(f"{server.url}/r/live#token={listener}", viewport=PHONE)
    page = tab.page
    await expect(page.get_by_role("article", name="Loud?")).to_be_visible()
    await expect(page.locator(".slot")).to_contain_text("€15.00")
    assert await page.evaluate(FITS)
    assert await page.evaluate(UNLABELLED) == []

    # Keyboard only: add the cap, open the drawer, close it with Escape.
    add = page.get_by_role("button", name="Add Cap to cart")
    await add.focus()
    await page.keyboard.press("Enter")
    drawer = page.get_by_role("complementary", name="Your cart")
    await expect(drawer).to_be_visible()
    await expect(page.get_by_role("heading", name="Your cart")).to_be_focused()
    await expect(drawer.get_by_role("timer")).to_contain_text("Held for you for")
    await page.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()
    toggle = page.get_by_role("button", name="Cart, 1 item")
    await expect(toggle).to_be_focused()
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await page.keyboard.press("Enter")
    await expect(drawer).to_be_visible()
    await drawer.get_by_role("button", name="Remove Cap").press("Enter")
    await expect(drawer).to_contain_text("Your cart is empty.")

    host = server.token("live", "hana", "host")
    await page.goto(f"{server.url}/host/live#token={host}")
    await page.reload()
    await expect(page.get_by_role("form", name="Create a poll")).to_be_visible()
    assert await page.evaluate(FITS)
    assert await page.evaluate(UNLABELLED) == []
    assert tab.script_errors() == []
