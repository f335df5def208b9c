"""The listener page falls back to HLS (hls.js) when WebRTC is full: the WHEP
cap is taken, the page plays the room over HLS (its <audio> element's time
advances, the level meter moves), says the sound is a few seconds behind,
and the shop keeps updating live over Socket.IO; once a seat frees up it
goes back live over WebRTC by itself; no CSP violation."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from server.config import Settings
from tests.browser import PHONE, Browsers, browsers
from tests.harness import Harness
from tests.harness import test_settings as make_settings
from tests.media_helpers import AudioListener, wait_connected
from tests.test_hls import ROOM, publish
from tests.test_media_http import Signal
from tests.test_web_audio import energy_rises, eventually
from tests.test_web_csp import COLLECT_VIOLATIONS

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINK_TTL_S = 10  # the HLS link's life: the page renews it while it plays
TEE = {"id": "tee", "title": "Tour tee", "price": 499, "currency": "usd", "kind": "physical"}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        redis_url,
        whep_per_room=1,
        hls_segment_s=1.0,
        hls_window=4,
        hls_link_ttl_s=LINK_TTL_S,
    )


async def test_listener_falls_back_to_hls_when_webrtc_is_full(
    server: Harness, browsers: Browsers
) -> None:
    await server.create_room(id=ROOM, title="Sold-out show")
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    pub, _ = await publish(server)
    early = await AudioListener.start(Signal(server, "whep", server.token(ROOM, "early")), False)
    await wait_connected(early.pc)  # the room's one WebRTC seat is taken

    tab = await browsers.open(None, viewport=PHONE)
    await tab.page.add_init_script(COLLECT_VIOLATIONS)
    room_token = server.token(ROOM, "lee", name="Lee")
    playlists: list[tuple[str, int]] = []  # what a CDN in front would log
    tab.page.on(
        "response",
        lambda r: playlists.append((r.url, r.status)) if ".m3u8" in r.url else None,
    )
    await tab.page.goto(f"{server.url}/r/{ROOM}#token={room_token}")
    page = tab.page
    await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    await page.get_by_role("button", name="Listen").click()
    await expect(page.get_by_text("Listening with a delay")).to_be_visible(timeout=30_000)
    note = page.get_by_role("note")
    await expect(note).to_contain_text("a few seconds after the room")
    await expect(page.locator("#listen-panel .panel-body")).to_have_attribute(
        "data-audio-mode", "hls"
    )
    audio = page.locator("audio.room-audio")
    start = await eventually(lambda: audio.evaluate("a => a.currentTime > 0 && a.currentTime"))
    await eventually(lambda: audio.evaluate("(a, t) => a.currentTime > t + 2", start))
    assert not await audio.evaluate("a => a.paused")
    assert await audio.evaluate("a => a.src.startsWith('blob:')")  # hls.js, through MSE
    meter = page.get_by_role("meter", name="Room audio level")
    await eventually(lambda: meter.evaluate("m => m.value > 0"))

    # The shop is live all the same: a pinned offer arrives and sells at once.
    mod = await server.connect(ROOM, "mo", "moderator")
    answer = await mod.call("slot:pin", {"slot": 1, "product_id": "tee", "note": "Tonight only"})
    assert answer["ok"], answer
    slot = page.locator(".slot").filter(has_text="Tour tee")
    await expect(slot).to_contain_text("20 left")
    await tab.screenshot("room-hls-fallback", full_page=True)
    await slot.get_by_role("button", name="Add Tour tee to cart").click()
    await expect(slot).to_contain_text("19 left")

    # Playback outlives the playlist link: the page renews it, hls.js reloads
    # the playlist through the new one; no URL carries the room token.
    now = await audio.evaluate("a => a.currentTime")
    await eventually(
        lambda: audio.evaluate("(a, t) => a.currentTime > t", now + LINK_TTL_S + 2),
        timeout=LINK_TTL_S * 4,
    )
    links = {url.split("token=", 1)[1] for url, _ in playlists}
    assert len(links) >= 2 and all(status != 401 for _, status in playlists), playlists
    assert not any(room_token in url for url, _ in playlists)

    # The WebRTC seat frees up: the page goes back live by itself.
    await early.close()
    await expect(page.get_by_text("Listening live.")).to_be_visible(timeout=45_000)
    await expect(note).to_be_hidden()
    await expect(page.locator("#listen-panel .panel-body")).to_have_attribute(
        "data-audio-mode", "webrtc"
    )
    await energy_rises(tab)

    assert await page.evaluate("window.__violations") == []
    assert tab.script_errors() == []
    await pub.close()
