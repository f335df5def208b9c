"""The demo room: a room with every module, a poll, and (through the shop's
own seeding) products and a drop; and the links to enter it."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kernel.errors import Conflict
from rooms import lifecycle, polls
from server import tokens
from server.appkeys import ROOMS, SCHEDULER, SETTINGS
from server.roles import Role

logger = logging.getLogger(__name__)

DEMO_ROOM = "demo"

# Features add their demo content: `async def seed(app, room_was_created) -> None`.
Seeder = Callable[[web.Application, bool], Awaitable[None]]
SEEDERS: web.AppKey[list[Seeder]] = web.AppKey("demo_seeders", list)
LINK_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class DemoLinks:
    host: str
    moderator: str
    listener: str


async def seed_room(app: web.Application, now: float) -> bool:
    """Create the demo room and its poll; False if it already existed."""
    store = app[ROOMS]
    try:
        await lifecycle.create(
            store,
            {"id": DEMO_ROOM, "title": "droproom demo: live merch drop", "guests": True},
            now,
        )
    except Conflict:
        return False
    draft = polls.PollDraft("Which colour for the next hoodie?", ("Black", "Sand", "Forest"), None)
    await polls.create(store, DEMO_ROOM, draft, now)
    return True


def links(app: web.Application, room: str = DEMO_ROOM) -> DemoLinks:
    settings = app[SETTINGS]
    now = app[SCHEDULER].clock()

    def link(page: str, identity: str, name: str, role: Role) -> str:
        token = tokens.mint(
            settings.secret,
            room=room,
            identity=identity,
            role=role,
            name=name,
            ttl_s=LINK_TTL_S,
            now=now,
        )
        return f"{settings.public_url}/{page}/{room}#token={token}"

    return DemoLinks(
        host=link("host", "host", "Host", Role.HOST),
        moderator=link("host", "mod", "Moderator", Role.MODERATOR),
        listener=link("r", "listener-1", "Listener", Role.LISTENER),
    )
