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

from commerce import keys, lua
from commerce.catalog import Catalog
from commerce.drops import Drop, DropRequest, drop_from_hash, new_drop_id
from kernel.errors import Conflict, Invalid, NotFound
from kernel.events import Event, to_room

logger = logging.getLogger(__name__)

MAX_RESTOCK = 1_000_000

# KEYS: drop, drops, due, log, head, shop rooms
# ARGV: drop_id, product_id, price, currency, starts_at, ends_at, stock, limit, now, room
_SCHEDULE = lua.script("""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'product_id', ARGV[2], 'price', ARGV[3], 'currency', ARGV[4],
  'starts_at', ARGV[5], 'ends_at', ARGV[6], 'limit', ARGV[8], 'tracked', '1',
  'given', ARGV[7], 'left', ARGV[7], 'held', 0, 'sold', 0, 'announced', '')
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[9], ARGV[1])
log_append(KEYS[4], KEYS[5], 'drop.scheduled', cjson.encode({drop_id = ARGV[1],
  product_id = ARGV[2], starts_at = tonumber(ARGV[5]), ends_at = tonumber(ARGV[6]),
  stock = tonumber(ARGV[7]), per_buyer_limit = tonumber(ARGV[8])}), ARGV[9])
announce(KEYS[1], ARGV[1], tonumber(ARGV[9]), KEYS[4], KEYS[5])
return 1
""")

# KEYS: drop, due, log, head   ARGV: drop_id, add, now
_RESTOCK = lua.script("""
local ends = redis.call('HGET', KEYS[1], 'ends_at')
if not ends then return {'not_found'} end
local now = tonumber(ARGV[3])
if now >= tonumber(ends) then return {'conflict'} end
redis.call('HINCRBY', KEYS[1], 'given', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'left', ARGV[2])
log_append(KEYS[3], KEYS[4], 'drop.restocked',
  cjson.encode({drop_id = ARGV[1], add = tonumber(ARGV[2])}), ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {'ok', announce(KEYS[1], ARGV[1], now, KEYS[3], KEYS[4]) or ''}
""")

# KEYS: drop, due, log, head   ARGV: drop_id, now
# Announces a transition if one is due and reschedules the drop's next check.
_TICK = lua.script("""
local now = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at')
if not f[1] then redis.call('ZREM', KEYS[2], ARGV[1]) return '' end
local s = announce(KEYS[1], ARGV[1], now, KEYS[3], KEYS[4]) or ''
local starts, ends = tonumber(f[1]), tonumber(f[2])
if now < starts then redis.call('ZADD', KEYS[2], starts, ARGV[1])
elseif now < ends then redis.call('ZADD', KEYS[2], ends, ARGV[1])
else redis.call('ZREM', KEYS[2], ARGV[1]) end
return s
""")


class DropStore:
    def __init__(self, redis: aioredis.Redis, catalog: Catalog) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._catalog = catalog
        self._schedule = redis.register_script(_SCHEDULE)
        self._restock = redis.register_script(_RESTOCK)
        self._tick = redis.register_script(_TICK)

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

    async def schedule(self, room: str, req: DropRequest, now: float) -> tuple[Drop, list[Event]]:
        product, _ = await self._catalog.get(req.product_id)
        drop_id = new_drop_id()
        args: list[Any] = [drop_id, product.id, product.price, product.currency]
        args += [repr(req.starts_at), repr(req.ends_at), req.stock, req.per_buyer_limit or 0]
        args += [repr(now), room]
        await self._redis.sadd(keys.SHOP_ROOMS, room)
        drop_keys = [keys.drop(room, drop_id), keys.drops(room), keys.drops_due(room)]
        await self._schedule(keys=[*drop_keys, keys.log(room), keys.log_head(room)], args=args)
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
        res = await self._restock(keys=script_keys, args=[drop_id, add, repr(now)])
        if res[0] == b"not_found":
            raise NotFound(f"no drop {drop_id} in this room")
        if res[0] == b"conflict":
            raise Conflict("the drop has ended")
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
            changed = await self._tick(keys=script_keys, args=[drop_id, repr(now)])
            if changed:
                drop = await self.get(room, drop_id)
                logger.info("room %s: drop %s is %s", room, drop_id, changed.decode())
                events.append(drop_event(drop, now))
        return events


def drop_event(drop: Drop, now: float) -> Event:
    return to_room(drop.room, "drop:updated", {"drop": drop.as_dict(now)})
