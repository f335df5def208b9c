"""Playwright helpers for the browser tests: Debian's Chromium, headless,
with a fake microphone and loopback WebRTC; each page's console errors are
collected so a test can fail on them. Never installs browsers."""

import contextlib
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    async_playwright,
)

CHROMIUM = os.environ.get("DROPROOM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]

# Peer connections a page opens, kept for the test to read `getStats()`:
# instrumentation added by the test, not by the page.
RECORD_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__peers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Native);
})();
"""

INBOUND_AUDIO = """
async () => {
  let energy = 0, packets = 0;
  for (const pc of window.__peers || []) {
    if (pc.connectionState === "closed") continue;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        energy += s.totalAudioEnergy || 0;
        packets += s.packetsReceived || 0;
      }
    });
  }
  return { energy, packets };
}
"""


@dataclass
class Tab:
    """A page in its own browser (own cookies, storage and microphone)."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def watch(self) -> None:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.errors.append(msg.text)

        self.page.on("console", on_console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def script_errors(self) -> list[str]:
        """Errors of our own code (the fake Stripe.js and failed fetches aside)."""
        return [e for e in self.errors if "Failed to load resource" not in e]

    async def screenshot(self, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path

    async def inbound_audio(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate(INBOUND_AUDIO)
        return result


class Browsers:
    """Starts up to a few Chromium instances, each with a fresh profile."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.contexts: list[BrowserContext] = []
        self._pw: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> "Browsers":
        self._pw = await self._stack.enter_async_context(async_playwright())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                await context.close()
        await self._stack.aclose()

    async def open(self, url: str | None, viewport: dict[str, int] | None = None) -> Tab:
        """A new browser on `url` (None: a blank page, to set up before loading)."""
        profile = self.root / f"profile-{len(self.contexts)}"
        context = await self._pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport=viewport or DESKTOP,
        )
        self.contexts.append(context)
        await context.add_init_script(RECORD_PEERS)
        page = context.pages[0] if context.pages else await context.new_page()
        page.set_default_timeout(15_000)
        tab = Tab(page)
        tab.watch()
        if url:
            await page.goto(url)
        return tab


async def fill_shipping(drawer: Locator, country: str = "KR", name: str = "Lee Park") -> None:
    """A physical item: the checkout asks where to send it."""
    address = drawer.get_by_role("group", name="Shipping address")
    await address.get_by_label("Full name").fill(name)
    await address.get_by_label("Address", exact=True).fill("1 Harbour Road")
    await address.get_by_label("City").fill("Busan")
    await address.get_by_label("Postal code").fill("48058")
    await address.get_by_label("Country").select_option(country)


async def pay_with(page: Page, number: str = "4242424242424242") -> None:
    """Type a card into the card element (Stripe.js's own fields) and pay."""
    card = page.locator("#card-element")
    await card.get_by_placeholder("number").fill(number)
    await card.get_by_placeholder("exp_month").fill("12")
    await card.get_by_placeholder("exp_year").fill("34")
    await card.get_by_placeholder("cvc").fill("123")
    await card.get_by_placeholder("postal_code").fill("94110")
    await page.locator("#cart-drawer").get_by_role("button", name=re.compile(r"^Pay ")).click()


@pytest.fixture
async def browsers(tmp_path: Path) -> AsyncIterator[Browsers]:
    async with Browsers(tmp_path / "chromium") as opened:
        yield opened
