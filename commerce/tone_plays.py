"""What tone plays in which room, kept in Redis so every process tells the
same: one key on the room's slot (`commerce.keys.tone`), written by the
process that mixes the room (the holder of its media lease) and read by any
process for `room:state.tone`. Its ttl ends with the tone, so a holder that
dies mid-tone leaves nothing behind. Each change is one command or one
script; each returns the room event it calls for. Must not import any
framework.
"""

from __future__ import annotations

import json
import math
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.events import TONE_PLAYING, TONE_STOPPED
from kernel.events import Event, to_room
from kernel.lua import Scripts


def _text(raw: Any) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


class TonePlays:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._scripts = Scripts(redis)

    async def started(self, room: str, product_id: str, ends_at: float, now: float) -> list[Event]:
        """The tone plays until `ends_at`: `tone:stopped` for the tone it
        replaced (if the room heard of one), then `tone:playing`."""
        value = json.dumps({"product_id": product_id, "ends_at": ends_at})
        ttl_ms = max(1, math.ceil((ends_at - now) * 1000))
        replaced = _text(await self._redis.set(keys.tone(room), value, px=ttl_ms, get=True))
        events = []
        if replaced is not None:
            events.append(to_room(room, TONE_STOPPED, {"product_id": _product(replaced)}))
        payload = {"product_id": product_id, "ends_at": ends_at}
        events.append(to_room(room, TONE_PLAYING, payload))
        return events

    async def stopped(self, room: str) -> Event | None:
        """Stopped by a moderator: `tone:stopped` if the room heard of a tone."""
        current = _text(await self._redis.getdel(keys.tone(room)))
        if current is None:
            return None
        return to_room(room, TONE_STOPPED, {"product_id": _product(current)})

    async def ended(self, room: str, product_id: str) -> Event | None:
        """The tone of `product_id` played to its end in the room's mix."""
        told = await self._scripts.run("commerce/tone_end", [keys.tone(room)], [product_id])
        return to_room(room, TONE_STOPPED, {"product_id": product_id}) if int(told) else None

    async def current(self, room: str) -> dict[str, Any] | None:
        """`{product_id, ends_at}` of the tone playing in the room, if any."""
        raw = _text(await self._redis.get(keys.tone(room)))
        if raw is None:
            return None
        found = json.loads(raw)
        return {"product_id": str(found["product_id"]), "ends_at": float(found["ends_at"])}


def _product(raw: str) -> str:
    return str(json.loads(raw)["product_id"])
