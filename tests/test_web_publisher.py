"""Browser test: the host's microphone publishes again by itself when the
server closes its WHIP session (as when the room's media lease moves to
another process), showing that it is reconnecting meanwhile."""

import asyncio

import pytest
from playwright.async_api import expect

from media.session import Kind
from server.audio.ownership import LEASE_LOST
from server.audio.routes import MEDIA
from tests.browser import Browsers, browsers
from tests.harness import Harness

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOM = "onair"


def publishing(server: Harness, identity: str) -> list[str]:
    engine = server.app[MEDIA]
    return [
        s.id
        for s in engine.sessions.values()
        if s.kind is Kind.PUBLISH and s.identity == identity and s.connected_at is not None
    ]


async def test_the_host_publishes_again_when_the_server_closes_its_session(
    server: Harness, browsers: Browsers
) -> None:
    await server.create_room(id=ROOM, title="On air")
    token = server.token(ROOM, "hana", "host", name="Hana")
    host = await browsers.open(f"{server.url}/host/{ROOM}#token={token}")
    await host.page.get_by_role("button", name="Go live").click()
    await expect(host.page.get_by_text("You are on air.")).to_be_visible()
    async with asyncio.timeout(10):
        while not publishing(server, "hana"):
            await asyncio.sleep(0.1)
    first = publishing(server, "hana")

    # the process loses the room's media: every session of the room is closed
    await server.app[MEDIA].drop_room(ROOM, LEASE_LOST)
    await expect(host.page.get_by_text("Reconnecting")).to_be_visible(timeout=15_000)
    await expect(host.page.get_by_text("You are on air.")).to_be_visible(timeout=30_000)
    async with asyncio.timeout(15):
        while not (again := publishing(server, "hana")):
            await asyncio.sleep(0.1)
    assert again != first
    # still on air as far as the host is concerned: the button ends the broadcast
    await host.page.get_by_role("button", name="End broadcast").click()
    await expect(host.page.get_by_text("Microphone off.")).to_be_visible()
    async with asyncio.timeout(10):
        while publishing(server, "hana"):
            await asyncio.sleep(0.1)
    assert host.script_errors() == []
