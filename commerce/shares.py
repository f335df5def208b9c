"""A room's share of a plain product's stock, so that every script of a room
touches one Redis Cluster slot.

A tracked product's units live in its pool (`{product:<id>}`) until a room
needs them: `cart:add` pulls the missing units into the room's share
(`{room:<id>}:stock:<product>`), which the reservation, checkout and
settlement scripts then use like a drop's stock. Units a room no longer
offers go back to the pool. A move crosses two slots, so it is three
single-slot steps, each safe to repeat:

1. out: take n units from the source and write the move into the source's
   outbox (`...:moves`, move id -> {to, inbox, field, n});
2. in: add them to the destination unless its inbox (`...:moves:in`) has
   seen the move id;
3. forget the move in the outbox.

A process that dies between the steps leaves the move in its outbox; the
sweeper's `resume` finishes it. The steps are commerce/lua/share_out.lua and
share_in.lua (share_ensure.lua makes the empty share). Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.catalog import Catalog, Product
from kernel.lua import Scripts

logger = logging.getLogger(__name__)

INBOX_KEEP_S = 24 * 3600  # how long a destination remembers the moves it applied


def new_move_id() -> str:
    return "mv_" + secrets.token_hex(8)


class Shares:
    def __init__(self, redis: aioredis.Redis, catalog: Catalog) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._catalog = catalog
        self._scripts = Scripts(redis)
        self._out = self._scripts.get("commerce/share_out")  # step 1 of a move

    async def ensure(self, room: str, product: Product) -> None:
        """The room's share of `product` exists (empty until units are pulled)."""
        tracked = "1" if product.stock is not None else "0"
        args: list[Any] = [product.id, product.price, product.currency, tracked]
        await self._scripts.run("commerce/share_ensure", [keys.share(room, product.id)], args)

    async def refill(self, room: str, product_id: str, qty: int, now: float) -> bool:
        """Make the share able to hold `qty` more units if the pool allows;
        True if anything changed (the caller tries its reservation again)."""
        raw = await self._redis.hmget(keys.share(room, product_id), "tracked", "left")
        if raw[0] is None:
            found = await self._catalog.find(product_id)
            if found is None:
                return False
            await self.ensure(room, found[0])
            return True
        if raw[0] != b"1" or int(raw[1]) >= qty:
            return False
        return await self.pull(room, product_id, qty - int(raw[1]), now) > 0

    async def pull(
        self,
        room: str,
        product_id: str,
        n: int,
        now: float,
        *,
        field: str = "left",
        move_id: str = "",
    ) -> int:
        """Move up to `n` units of `field` from the pool into the room's share."""
        record = {
            "to": keys.share(room, product_id),
            "inbox": keys.room_moves_in(room),
            "field": field,
        }
        pool = [keys.product(product_id), keys.product_moves(product_id)]
        pool.append(keys.product_rooms(product_id))
        return await self._move(pool, record, n, room, move_id or new_move_id(), now)

    async def give_back(self, room: str, product_id: str, now: float) -> int:
        """Return every unreserved unit of the room's share to the pool."""
        record = {
            "to": keys.product(product_id),
            "inbox": keys.product_moves_in(product_id),
            "field": "left",
        }
        share = [keys.share(room, product_id), keys.room_moves(room), keys.room_moves_in(room)]
        moved = await self._move(share, record, -1, "", new_move_id(), now)
        if moved:
            logger.info("room %s: %d units of %s back to the pool", room, moved, product_id)
        return moved

    async def left_in_pool(self, product_id: str) -> int:
        raw = await self._redis.hget(keys.product(product_id), "left")
        return int(raw) if raw is not None else 0

    async def available(self, room: str, product_id: str) -> int:
        """Units a buyer in `room` may still reserve: the share's and the pool's."""
        raw = await self._redis.hget(keys.share(room, product_id), "left")
        return (int(raw) if raw is not None else 0) + await self.left_in_pool(product_id)

    async def _move(
        self, source: list[str], record: dict[str, Any], want: int, room: str, mid: str, now: float
    ) -> int:
        outbox = source[1]
        await self._redis.sadd(keys.SHOP_MOVES, outbox)
        args = [mid, record["field"], want, json.dumps(record), room]
        n = int(await self._scripts.run("commerce/share_out", source, args))
        if n > 0:
            await self._deliver(outbox, mid, {**record, "n": n}, now)
        return n

    async def _deliver(self, outbox: str, mid: str, record: dict[str, Any], now: float) -> None:
        args = [mid, record["field"], record["n"], repr(now), INBOX_KEEP_S]
        await self._scripts.run("commerce/share_in", [record["to"], record["inbox"]], args)
        await self._redis.hdel(outbox, mid)

    async def resume(self, now: float) -> int:
        """Finish the moves that a dead process left half done."""
        finished = 0
        for raw_outbox in await self._redis.smembers(keys.SHOP_MOVES):
            outbox = raw_outbox.decode()
            for mid, raw in (await self._redis.hgetall(outbox)).items():
                await self._deliver(outbox, mid.decode(), json.loads(raw), now)
                logger.warning("finished move %s left in %s", mid.decode(), outbox)
                finished += 1
            if not await self._redis.hlen(outbox):
                await self._redis.srem(keys.SHOP_MOVES, outbox)
        return finished
