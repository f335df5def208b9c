"""Drops in Redis: schedule, restock, and the tick that announces each state
transition once (a compare-and-set on the announced state, so several server
processes running the scheduler emit each transition exactly once).

Every change is one Lua script that also appends to the room's event log.
Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.catalog import Catalog, check_shown_by
from commerce.drops import Drop, DropRequest, drop_from_hash, new_drop_id
from commerce.events import DROP_UPDATED
from kernel.errors import Invalid, NotFound
from kernel.events import Event, to_room
from kernel.lua import Scripts
from kernel.owners import ADMIN_OWNER

logger = logging.getLogger(__name__)

MAX_RESTOCK = 1_000_000


class DropStore:
    def __init__(self, redis: aioredis.Redis, catalog: Catalog) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._catalog = catalog
        self._scripts = Scripts(redis)

    async def get(self, room: str, drop_id: str) -> Drop:
        raw = await self._redis.hgetall(keys.drop(room, drop_id))
        if not raw:
            raise NotFound(f"no drop {drop_id} in this room")
        return drop_from_hash(room, drop_id, raw)

    async def in_room(self, room: str) -> list[Drop]:
        ids = await self._redis.zrange(keys.drops(room), 0, -1)
        drops: list[Drop] = []
        for raw_id in ids:
            raw = await self._redis.hgetall(keys.drop(room, raw_id.decode()))
            if raw:
                drops.append(drop_from_hash(room, raw_id.decode(), raw))
        return drops

    async def schedule(
        self, room: str, req: DropRequest, now: float, room_owner: str = ADMIN_OWNER
    ) -> tuple[Drop, list[Event]]:
        """A new drop; `Forbidden` for another owner's product in a
        creator's room (commerce.catalog.check_shown_by)."""
        product, _ = await self._catalog.get(req.product_id)
        check_shown_by(product, room_owner)
        drop_id = new_drop_id()
        args: list[Any] = [drop_id, product.id, product.price, product.currency]
        args += [repr(req.starts_at), repr(req.ends_at), req.stock, req.per_buyer_limit or 0]
        args += [repr(now), room, "1" if req.requires_account else "0"]
        await self._redis.sadd(keys.SHOP_ROOMS, room)
        await self._catalog.note_shown(product.id, room)
        drop_keys = [keys.drop(room, drop_id), keys.drops(room), keys.drops_due(room)]
        drop_keys += [keys.log(room), keys.log_head(room)]
        await self._scripts.run("commerce/drop_schedule", drop_keys, args)
        drop = await self.get(room, drop_id)
        logger.info("room %s: drop %s scheduled (%s units)", room, drop_id, req.stock)
        return drop, [drop_event(drop, now)]

    async def restock(
        self, room: str, drop_id: str, add: int, now: float
    ) -> tuple[Drop, list[Event]]:
        if not 1 <= add <= MAX_RESTOCK:
            raise Invalid(f"add must be between 1 and {MAX_RESTOCK}")
        script_keys = [keys.drop(room, drop_id), keys.drops_due(room)]
        script_keys += [keys.log(room), keys.log_head(room)]
        await self._scripts.run("commerce/drop_restock", script_keys, [drop_id, add, repr(now)])
        drop = await self.get(room, drop_id)
        logger.info("room %s: drop %s restocked +%s", room, drop_id, add)
        return drop, [drop_event(drop, now)]

    async def tick(self, room: str, now: float) -> list[Event]:
        """Announce the transitions that are due in this room (the scheduler's job)."""
        due = await self._redis.zrangebyscore(keys.drops_due(room), "-inf", repr(now))
        events: list[Event] = []
        for raw_id in due:
            drop_id = raw_id.decode()
            script_keys = [keys.drop(room, drop_id), keys.drops_due(room)]
            script_keys += [keys.log(room), keys.log_head(room)]
            changed = await self._scripts.run(
                "commerce/drop_tick", script_keys, [drop_id, repr(now)]
            )
            if changed:
                drop = await self.get(room, drop_id)
                logger.info("room %s: drop %s is %s", room, drop_id, changed.decode())
                events.append(drop_event(drop, now))
        return events


def drop_event(drop: Drop, now: float) -> Event:
    return to_room(drop.room, DROP_UPDATED, {"drop": drop.as_dict(now)})
