"""`stats:updated`: the live part of the report, every STATS_EVERY_S to the
staff of each live room, computed once per room however many server
processes run (a Redis lease per room, rooms.stats.hold_lease) and sent only
when something changed (a digest of the last one sent, kept in Redis so a
new lease holder does not repeat it)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import Any

from aiohttp import web

from kernel.events import to_staff
from rooms import keys
from rooms.events import STATS_UPDATED
from rooms.stats import hold_lease, live_rooms, note_listeners
from server.appkeys import EMITTER, ROOMS, SCHEDULER, SnapshotPart
from server.numbers import audio
from server.numbers.metrics import BUSINESS
from server.numbers.report import report

logger = logging.getLogger(__name__)

STATS_EVERY_S = 2.0
LEASE_S = 3 * STATS_EVERY_S  # a holder that stops is replaced within this
SENT_TTL_S = 3600


def digest(payload: dict[str, Any]) -> str:
    """What the staff would see, without the time it was computed."""
    seen = {k: v for k, v in payload.items() if k != "at"}
    return hashlib.sha1(json.dumps(seen, sort_keys=True).encode()).hexdigest()


class StatsPublisher:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.token = "stats_" + secrets.token_hex(8)

    async def tick(self, now: float) -> None:
        store = self.app[ROOMS]
        await audio.note(self.app, self.token, now)
        listeners = 0
        for room in await live_rooms(store):
            if await hold_lease(store, room, self.token, LEASE_S):
                listeners += await note_listeners(store, room, now)
                await self.publish(room, now)
        self.app[BUSINESS].listeners.set(listeners)

    async def publish(self, room: str, now: float) -> bool:
        """Send the room's numbers to its staff if they changed; whether sent."""
        store = self.app[ROOMS]
        payload = await report(self.app, room, now)
        payload["audio"] = await audio.health(self.app, room, now)
        seen = digest(payload)
        if await store.redis.get(keys.stats_sent(room)) == seen:
            return False
        await store.redis.set(keys.stats_sent(room), seen, ex=SENT_TTL_S)
        await self.app[EMITTER].emit([to_staff(room, STATS_UPDATED, payload)])
        return True


STATS: web.AppKey[StatsPublisher] = web.AppKey("stats", StatsPublisher)
STAFF_ROLES = frozenset({"host", "moderator"})


def snapshot_part(app: web.Application) -> SnapshotPart:
    """A staff member connecting gets the room's numbers at once in
    `room:state.stats` (`stats:updated` then follows only their changes)."""

    async def part(room: str, identity: str) -> dict[str, Any]:
        person = await app[ROOMS].get_participant(room, identity)
        if person is None or person.role not in STAFF_ROLES:
            return {}
        now = app[SCHEDULER].clock()
        payload = await report(app, room, now)
        return {"stats": payload | {"audio": await audio.health(app, room, now)}}

    return part
