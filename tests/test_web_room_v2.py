"""Browser tests of the stage, v2: a speaker muted by a moderator is told so
(never "on air" while the room cannot hear them), and a page whose speaker
token was revoked by leaving the stage goes back to its own token."""

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser import PHONE, Browsers, Tab, browsers
from tests.harness import Harness

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "salon2"


async def _on_stage(server: Harness, browsers: Browsers) -> tuple[Page, Tab]:
    """A host console and a listener the host invited to the stage."""
    await server.create_room(id=ROOM, title="Friday salon")
    host_token = server.token(ROOM, "hana", "host", name="Hana")
    host = await browsers.open(f"{server.url}/host/{ROOM}#token={host_token}")
    lee_token = server.token(ROOM, "lee", "listener", name="Lee")
    room = await browsers.open(f"{server.url}/r/{ROOM}#token={lee_token}", viewport=PHONE)
    for page in (host.page, room.page):
        await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    await room.page.get_by_role("button", name="Raise hand").click()
    hands = host.page.get_by_role("list", name="Raised hands")
    await hands.get_by_role("button", name="Invite Lee to stage").click()
    await expect(room.page.get_by_role("region", name="Your microphone")).to_be_visible()
    return host.page, room


async def test_a_muted_speaker_is_told_they_are_muted_not_on_air(
    server: Harness, browsers: Browsers
) -> None:
    host, tab = await _on_stage(server, browsers)
    room = tab.page
    mic = room.get_by_role("region", name="Your microphone")
    await mic.get_by_role("button", name="Start my microphone").click()
    status = mic.get_by_role("status")
    await expect(status).to_have_text("You are on air.")

    stage = host.get_by_role("list", name="On stage")
    await stage.get_by_role("button", name="Mute Lee").click()
    await expect(status).to_have_text("You are muted by a moderator.")
    await expect(room.get_by_text("You are on air.")).to_have_count(0)
    shot = await tab.screenshot("room-speaker-muted", full_page=False)
    assert shot.stat().st_size > 0

    await stage.get_by_role("button", name="Unmute Lee").click()
    await expect(status).to_have_text("You are on air.")
    assert tab.script_errors() == []


async def test_a_page_whose_speaker_token_was_revoked_rejoins_with_its_own(
    server: Harness, browsers: Browsers
) -> None:
    host, tab = await _on_stage(server, browsers)
    room = tab.page
    # The page keeps the invitation's token beside its own.
    await expect(room).to_have_url(re.compile("speaker="))
    await (
        host.get_by_role("list", name="On stage")
        .get_by_role("button", name="Remove Lee from stage")
        .click()
    )
    await expect(room.get_by_role("region", name="Your microphone")).to_be_hidden()
    # A reload offers the revoked speaker token first: refused, the page goes
    # back to the listener token it came with and is in the room again.
    await room.reload()
    await expect(room.locator("header").get_by_role("status")).to_have_text("Connected")
    await expect(room.get_by_role("button", name="Raise hand")).to_be_visible()
    assert "speaker=" not in room.url
