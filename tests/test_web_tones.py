"""Browser tests of tones: a slot card plays the preview; a guest buys a
tone and downloads it per device from the receipt (the bytes are the ones
listed), finds it again in "My purchases" after a reload; the host uploads
a sound and watches it process to ready, then plays it into the room and
the listener's card lights up."""

import asyncio
import contextlib
import hashlib
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from server.config import Settings
from tests.browser import PHONE, SCREENSHOTS, Browsers, Tab, browsers, pay_with
from tests.harness import Harness, connect
from tests.harness import test_settings as make_settings
from tests.sound_helpers import make_sound
from tests.tone_files import ready_tone

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "tones"
LINK_S = 12  # a download link's life in the expiry test


async def _guest(browsers: Browsers, server: Harness, name: str = "Lee") -> Tab:
    tab = await browsers.open(f"{server.url}/r/{ROOM}", viewport=PHONE)
    await tab.page.get_by_label("Your name").fill(name)
    await tab.page.get_by_role("button", name="Join", exact=True).click()
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    return tab


async def _download(page: Page, button: Any) -> bytes:
    async with page.expect_download() as info:
        await button.click()
    download = await info.value
    return await asyncio.to_thread(Path(await download.path()).read_bytes)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_preview_then_buy_a_tone_and_download_it_per_device(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await server.create_room(id=ROOM, title="Tone night", guests=True)
    audio = await ready_tone(server, tmp_path / "files")
    sha = {v["format"]: v["sha256"] for v in audio["variants"]} | {
        "bundle": audio["bundle"]["sha256"]
    }
    mod = await server.connect(ROOM, "mo", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "chime"}))["ok"]

    tab = await _guest(browsers, server)
    room = tab.page
    slot = room.locator(".slot").filter(has_text="Harbour chime")
    await expect(slot).to_contain_text("€1.99")

    # The preview plays in the page (and pauses again).
    preview = slot.get_by_role("button", name=re.compile("^Preview Harbour chime"))
    await preview.click()
    await expect(preview).to_have_attribute("aria-pressed", "true")
    await room.wait_for_function(
        "() => document.querySelector('.preview-audio').currentTime > 0.3", timeout=10_000
    )
    await preview.click()
    await expect(preview).to_have_attribute("aria-pressed", "false")
    assert await room.evaluate("document.querySelector('.preview-audio').paused")

    # A guest's checkout asks an email (optional) and no address for a tone.
    await slot.get_by_role("button", name="Add Harbour chime to cart").click()
    drawer = room.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Checkout").click()
    email = drawer.get_by_label("Email (optional)")
    await expect(email).to_be_visible()
    await expect(drawer.get_by_text("the way back to what you bought")).to_be_visible()
    await expect(drawer.get_by_role("group", name="Shipping address")).to_be_hidden()
    await email.fill("lee@example.com")
    await drawer.get_by_role("button", name="Continue to payment").click()
    await pay_with(room)

    receipt = room.locator(".receipt")
    await expect(receipt).to_contain_text("Payment received", timeout=20_000)
    buttons = receipt.get_by_role("group", name="Download Harbour chime")
    for label in ("iPhone", "Android", "Other phones", "All files (zip)"):
        button = buttons.get_by_role("button", name=re.compile(f"^{re.escape(label)}"))
        await expect(button).to_be_visible()
    await tab.screenshot("room-receipt-downloads", full_page=False)
    iphone = await _download(room, buttons.get_by_role("button", name=re.compile("^iPhone")))
    assert _sha(iphone) == sha["m4r"]
    other = await _download(room, buttons.get_by_role("button", name=re.compile("^Other phones")))
    assert _sha(other) == sha["3gp"]

    # Reloaded, the purchase is in "My purchases" with fresh links, and in "My orders".
    await room.reload()
    await expect(room.locator("header").get_by_role("status")).to_have_text("Connected")
    mine = room.get_by_role("region", name="My purchases")
    await expect(mine).to_contain_text("Harbour chime")
    android = mine.get_by_role("button", name=re.compile("^Android"))
    assert _sha(await _download(room, android)) == sha["mp3"]
    zipped = mine.get_by_role("button", name=re.compile(r"^All files \(zip\)"))
    assert _sha(await _download(room, zipped)) == sha["bundle"]
    await mine.scroll_into_view_if_needed()
    await mine.screenshot(path=str(SCREENSHOTS / "room-my-purchases.png"))
    assert tab.script_errors() == []


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(tmp_path / "data", redis_url, **getattr(request, "param", {}))


@pytest.mark.parametrize("settings", [{"download_ttl_s": LINK_S}], indirect=True)
async def test_an_expired_link_is_fetched_again_before_the_download(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    """A click on a link whose time is up asks the library for a fresh one.
    The links really run out (a short life), rather than the page's clock
    being moved: the page keeps its clock on the server's time, so any
    message from the server would undo a moved clock."""
    await server.create_room(id=ROOM, title="Tone night", guests=True)
    audio = await ready_tone(server, tmp_path / "files")
    m4r = next(v for v in audio["variants"] if v["format"] == "m4r")
    mod = await server.connect(ROOM, "mo", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "chime"}))["ok"]
    tab = await _guest(browsers, server)
    room = tab.page
    token = await room.evaluate("new URLSearchParams(location.hash.slice(1)).get('token')")
    guest = await connect(server.url, token)
    server.clients.append(guest)
    added = await guest.call("cart:add", {"product_id": "chime", "qty": 1})
    assert added["ok"], added
    paid = await guest.call("checkout:start", {"payment_method": "pm_card_visa"})
    assert paid.get("status") == "succeeded", paid
    mine = room.get_by_role("region", name="My purchases")
    await room.reload()
    await expect(mine).to_contain_text("Harbour chime")
    links_at = time.monotonic()  # the page holds links minted by now
    await room.evaluate(
        """() => {
          const real = window.fetch;
          window.__libraryFetches = 0;
          window.fetch = (url, ...rest) => {
            if (String(url).includes('/api/v1/me/library')) window.__libraryFetches += 1;
            return real(url, ...rest);
          };
        }"""
    )
    # Every link this page holds runs out (the page treats a link as out of
    # date SAFETY_S = 5 s before its end).
    await asyncio.sleep(max(0.0, links_at + LINK_S - 5 + 1 - time.monotonic()))
    iphone = mine.get_by_role("button", name=re.compile("^iPhone"))
    assert _sha(await _download(room, iphone)) == m4r["sha256"]
    assert await room.evaluate("window.__libraryFetches") >= 1


async def test_host_uploads_a_sound_watches_it_process_and_plays_it_in_the_room(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await server.create_room(id=ROOM, title="Tone night", guests=True)
    await server.admin_post(
        "/api/v1/products",
        {"id": "bell", "title": "Ship bell", "price": 299, "currency": "eur", "kind": "digital"},
    )
    mod = await server.connect(ROOM, "mo", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "bell"}))["ok"]
    token = server.token(ROOM, "hana", "host", name="Hana")
    admin = server.settings.admin_key
    host_tab = await browsers.open(f"{server.url}/host/{ROOM}#token={token}&admin={admin}")
    host = host_tab.page
    listener = await _guest(browsers, server)

    card = host.locator(".sound").filter(has_text="Ship bell")
    source = make_sound(tmp_path / "bell.wav", freq=523.0, seconds=8.0)
    await card.get_by_label("Sound file for Ship bell").set_input_files(str(source))
    await card.get_by_label("Start at (s)").fill("1")
    await card.get_by_label("Length (s, at most 30)").fill("5")
    await card.get_by_role("button", name="Upload sound").click()
    bar = card.get_by_role("progressbar", name="Processing Ship bell")
    status = card.get_by_role("status")
    await expect(bar).to_be_visible()
    panel = host.locator("#sounds-panel")
    # For the screenshot, a moment when the bar has moved (it may not stop there long).
    # (a quick job may pass it unseen: Playwright's expect then raises AssertionError)
    with contextlib.suppress(PlaywrightTimeout, AssertionError):
        await expect(status).to_contain_text(re.compile(r"Processing [1-9]\d?%"), timeout=10_000)
    await panel.screenshot(path=str(SCREENSHOTS / "host-upload-progress.png"))
    ready = re.compile(r"Ready · 5\.0 s · -1[5-7]\.\d LUFS")
    await expect(status).to_contain_text(ready, timeout=90_000)
    await expect(bar).to_be_hidden()
    await panel.screenshot(path=str(SCREENSHOTS / "host-upload-ready.png"))

    # The listener's card now has a preview; the host plays it into the room.
    slot = listener.page.locator(".slot").filter(has_text="Ship bell")
    await expect(slot.get_by_role("button", name=re.compile("^Preview Ship bell"))).to_be_visible()
    await card.get_by_role("button", name="Play Ship bell in the room").click()
    await expect(slot).to_have_class(re.compile("tone-playing"))
    playing = slot.get_by_role("status").filter(has_text="Playing in the room now")
    await expect(playing).to_be_visible()
    await card.get_by_role("button", name="Stop playing Ship bell").click()
    await expect(slot).not_to_have_class(re.compile("tone-playing"))


async def test_a_file_that_is_not_sound_is_refused_with_the_reason(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await server.create_room(id=ROOM, title="Tone night")
    await server.admin_post(
        "/api/v1/products",
        {"id": "bell", "title": "Ship bell", "price": 299, "currency": "eur", "kind": "digital"},
    )
    token = server.token(ROOM, "hana", "host", name="Hana")
    admin = server.settings.admin_key
    host = (await browsers.open(f"{server.url}/host/{ROOM}#token={token}&admin={admin}")).page
    # Not pinned anywhere yet: added to the Sounds panel from the product list.
    await host.get_by_label("Another digital product").select_option("bell")
    await host.get_by_role("button", name="Add", exact=True).click()
    card = host.locator(".sound").filter(has_text="Ship bell")
    await expect(card.get_by_role("status")).to_have_text("No sound yet.")
    notes = tmp_path / "notes.wav"
    await asyncio.to_thread(notes.write_bytes, b"these are not the sounds you are looking for" * 50)
    await card.get_by_label("Sound file for Ship bell").set_input_files(str(notes))
    await card.get_by_role("button", name="Upload sound").click()
    await expect(card.get_by_role("status")).to_contain_text(re.compile(r"^Upload failed: \S"))
    await expect(card.get_by_role("button", name="Play Ship bell in the room")).to_be_disabled()
