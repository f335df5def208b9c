"""Browser tests of the live room between two browsers, a host console and
a listener room: polls, Q&A, chat, reactions, hands and the stage, and a
listener page that reconnects and restores the room from `room:state`."""

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Page, WebSocketRoute, expect

from tests.browser import PHONE, Browsers, browsers
from tests.harness import Harness

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "salon"


async def _open_pair(server: Harness, browsers: Browsers) -> tuple[Page, Page]:
    await server.create_room(id=ROOM, title="Thursday salon")
    host_token = server.token(ROOM, "hana", "host", name="Hana")
    host = await browsers.open(f"{server.url}/host/{ROOM}#token={host_token}")
    lee_token = server.token(ROOM, "lee", "listener", name="Lee")
    room = await browsers.open(f"{server.url}/r/{ROOM}#token={lee_token}", viewport=PHONE)
    for page in (host.page, room.page):
        await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    return host.page, room.page


async def test_poll_vote_moves_the_host_bars(server: Harness, browsers: Browsers) -> None:
    host, room = await _open_pair(server, browsers)
    await host.get_by_label("Poll question").fill("Which encore?")
    await host.get_by_label("Options, one per line").fill("Blue in green\nSo what")
    await host.get_by_role("button", name="Open poll").click()

    poll = room.get_by_role("article", name="Which encore?")
    await expect(poll).to_be_visible()
    await poll.get_by_role("button", name=re.compile("So what")).click()
    await expect(poll.get_by_role("button", name=re.compile("So what"))).to_have_attribute(
        "aria-pressed", "true"
    )
    host_poll = host.get_by_role("article", name="Which encore?")
    so_what = host_poll.locator(".poll-option").filter(has_text="So what")
    await expect(so_what).to_contain_text("1 vote (100%)")
    await expect(so_what.locator(".poll-fill")).to_have_attribute("style", "width: 100%;")
    blue = host_poll.locator(".poll-option").filter(has_text="Blue in green")
    await expect(blue.locator(".poll-fill")).to_have_attribute("style", "width: 0%;")

    await host_poll.get_by_role("button", name="Close poll").click()
    await expect(poll).to_contain_text("Closed")
    await expect(poll.get_by_role("button", name=re.compile("Blue in green"))).to_be_disabled()


async def test_questions_chat_and_reactions(server: Harness, browsers: Browsers) -> None:
    host, room = await _open_pair(server, browsers)
    await room.get_by_label("Your question").fill("Where was the album recorded?")
    await room.get_by_label("Your question").press("Enter")
    question = host.locator(".question").filter(has_text="Where was the album recorded?")
    await expect(question).to_contain_text("Lee")

    # Someone else asks; the listener upvotes it and the host sees the votes.
    other = await server.connect(ROOM, "max", name="Max")
    assert (await other.call("qa:ask", {"text": "Any vinyl?"}))["ok"]
    await (
        room.get_by_role("listitem")
        .filter(has_text="Any vinyl?")
        .get_by_role("button", name=re.compile("Upvote"))
        .click()
    )
    vinyl = host.locator(".question").filter(has_text="Any vinyl?")
    await expect(vinyl.get_by_role("button", name=re.compile("Upvote"))).to_have_text("▲ 1")
    await question.get_by_role("button", name="Mark answered").click()
    await expect(
        room.locator(".question").filter(has_text="Where was the album recorded?")
    ).to_contain_text("answered")

    await room.get_by_role("textbox", name="Message").fill("What a set!")
    await room.get_by_role("button", name="Send").click()
    await expect(host.get_by_role("log", name="Chat messages")).to_contain_text("What a set!")

    await room.get_by_role("button", name="React: Fire").click()
    await expect(host.locator(".reaction-float").filter(has_text="🔥")).to_have_count(1)


async def test_hand_stage_invite_mute_remove(server: Harness, browsers: Browsers) -> None:
    host, room = await _open_pair(server, browsers)
    await room.get_by_role("button", name="Raise hand").click()
    hands = host.get_by_role("list", name="Raised hands")
    await expect(hands).to_contain_text("Lee")
    await hands.get_by_role("button", name="Invite Lee to stage").click()

    await expect(room.get_by_role("list", name="On stage")).to_contain_text("Lee")
    await expect(room.get_by_role("region", name="Your microphone")).to_be_visible()
    # The server sent a speaker token: WHIP lets the invited listener publish.
    await room.get_by_role("button", name="Start my microphone").click()
    await expect(room.get_by_text("You are on air.")).to_be_visible()
    await expect(room.get_by_role("button", name="Raise hand")).to_be_hidden()

    stage = host.get_by_role("list", name="On stage")
    await stage.get_by_role("button", name="Mute Lee").click()
    await expect(room.get_by_role("list", name="On stage")).to_contain_text("muted")
    await stage.get_by_role("button", name="Unmute Lee").click()
    await expect(room.get_by_role("list", name="On stage")).not_to_contain_text("muted")
    await stage.get_by_role("button", name="Remove Lee from stage").click()
    await expect(room.get_by_role("list", name="On stage")).not_to_contain_text("Lee")
    await expect(room.get_by_role("region", name="Your microphone")).to_be_hidden()
    await expect(room.get_by_role("button", name="Raise hand")).to_be_visible()


async def test_moderator_sees_only_what_the_role_allows(
    server: Harness, browsers: Browsers
) -> None:
    await server.create_room(id=ROOM, title="Thursday salon")
    token = server.token(ROOM, "mo", "moderator", name="Mo")
    tab = await browsers.open(f"{server.url}/host/{ROOM}#token={token}")
    page = tab.page
    await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    await expect(page.get_by_role("form", name="Create a poll")).to_be_visible()
    await expect(page.get_by_role("form", name="Pin a product")).to_be_visible()
    await expect(page.get_by_role("form", name="Schedule a drop")).to_be_visible()
    # Host-only: room settings, marking the room live, restocking.
    await expect(page.get_by_role("region", name="Room settings")).to_have_count(0)
    await expect(page.get_by_role("button", name="Go live")).to_be_hidden()
    await page.get_by_role("button", name="Step onto the stage").click()
    await expect(page.get_by_role("button", name="Go live")).to_be_visible()

    listener = server.token(ROOM, "lou", "listener")
    await page.goto(f"{server.url}/host/{ROOM}#token={listener}")
    await page.reload()
    await expect(page.get_by_role("alert")).to_contain_text("for hosts and moderators")
    await expect(page.get_by_role("form", name="Create a poll")).to_have_count(0)


async def test_listener_reconnects_and_restores_the_room(
    server: Harness, browsers: Browsers
) -> None:
    """The socket drops; while it is gone the room moves on; on reconnect
    the page shows the room as it is now, from `room:state`."""
    await server.create_room(id=ROOM, title="Thursday salon")
    token = server.token(ROOM, "lee", "listener", name="Lee")
    offline = {"on": False}
    sockets: list[WebSocketRoute] = []

    async def through(ws: WebSocketRoute) -> None:
        if offline["on"]:
            await ws.close()
            return
        sockets.append(ws)
        ws.connect_to_server()

    tab = await browsers.open(server.url + "/", viewport=PHONE)
    page = tab.page
    await page.route_web_socket(re.compile(r"/socket\.io/"), through)

    async def polling(route: Any) -> None:
        await (route.abort() if offline["on"] else route.continue_())

    await page.route(re.compile(r"/socket\.io/"), polling)
    await page.goto(f"{server.url}/r/{ROOM}#token={token}")
    status = page.locator("header").get_by_role("status")
    await expect(status).to_have_text("Connected")
    # Socket.IO connects over long-polling first and upgrades: cutting the
    # network before the websocket exists left the page "Connected" on a
    # long-poll still in flight (a flaky test under load).
    async with asyncio.timeout(10):
        while not sockets:
            await asyncio.sleep(0.05)

    offline["on"] = True
    for ws in sockets:
        await ws.close()
    await expect(status).to_have_text("Reconnecting…")
    mod = await server.connect(ROOM, "mo", "moderator", name="Mo")
    poll = await mod.call("poll:create", {"question": "Next tune?", "options": ["A", "B"]})
    assert poll["ok"], poll
    assert (await mod.call("chat:send", {"text": "missed me?"}))["ok"]
    assert (await mod.call("stage:invite", {"identity": "mo"}))["ok"]

    offline["on"] = False
    await expect(status).to_have_text("Connected", timeout=15_000)
    await expect(page.get_by_role("article", name="Next tune?")).to_be_visible()
    await expect(page.get_by_role("log", name="Chat messages")).to_contain_text("missed me?")
    await expect(page.get_by_role("list", name="On stage")).to_contain_text("Mo")
