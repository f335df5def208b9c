"""Browser tests of the audio path: the host goes live with the (fake)
microphone over WHIP and a listener in another browser hears it over WHEP,
with a level meter, and gets the sound back when the connection drops."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import expect

from server.audio.routes import MEDIA
from tests.browser import PHONE, Browsers, Tab, browsers
from tests.harness import Harness

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOM = "gig"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20) -> Any:
    """Poll `check` until it returns something truthy (a condition, not a clock)."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.25)
        return result


async def energy_rises(tab: Tab) -> None:
    """The page receives audio packets and their energy keeps growing."""
    first = await eventually(lambda: _audio_if(tab, lambda a: a["packets"] > 0 and a["energy"] > 0))
    await eventually(
        lambda: _audio_if(
            tab, lambda a: a["packets"] > first["packets"] + 50 and a["energy"] > first["energy"]
        )
    )


async def _audio_if(tab: Tab, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    audio = await tab.inbound_audio()
    return audio if ok(audio) else None


async def test_host_goes_live_and_listener_hears(server: Harness, browsers: Browsers) -> None:
    await server.create_room(id=ROOM, title="Friday gig")
    host_token = server.token(ROOM, "hana", "host", name="Hana")
    host = await browsers.open(f"{server.url}/host/{ROOM}#token={host_token}")
    await host.page.get_by_role("button", name="Go live").click()
    await expect(host.page.get_by_text("You are on air.")).to_be_visible()
    await expect(host.page.locator("#live-badge")).to_be_visible()

    listener_token = server.token(ROOM, "lee", "listener", name="Lee")
    room = await browsers.open(f"{server.url}/r/{ROOM}#token={listener_token}", viewport=PHONE)
    await expect(room.page.locator("#live-badge")).to_be_visible()
    stage = room.page.get_by_role("list", name="On stage")
    await expect(stage).to_contain_text("Hana")
    listen = room.page.get_by_role("button", name="Listen")
    await listen.focus()
    await room.page.keyboard.press("Enter")  # keyboard works as well as a click
    await expect(room.page.get_by_text("Listening live.")).to_be_visible()
    await energy_rises(room)
    meter = room.page.get_by_role("meter", name="Room audio level")
    await eventually(lambda: meter.evaluate("m => m.value > 0"))
    await room.screenshot("room-listening", full_page=False)

    # The connection drops (the server ends the session): the page reconnects.
    engine = server.app[MEDIA]
    for session in list(engine.sessions.values()):
        if session.identity == "lee":
            await engine.close(session.id, "test drop")
    await expect(room.page.get_by_text("reconnecting")).to_be_visible(timeout=15_000)
    await expect(room.page.get_by_text("Listening live.")).to_be_visible(timeout=30_000)
    await energy_rises(room)

    await host.page.get_by_role("button", name="End broadcast").click()
    await expect(host.page.locator("#live-badge")).to_be_hidden()
    await expect(room.page.locator("#live-badge")).to_be_hidden()
    assert room.script_errors() == [] and host.script_errors() == []
