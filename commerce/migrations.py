"""The shop's migration steps (run in order by `droproom migrate`, see
kernel.schema); each is safe to run again.

`room_shares` (wave 1 -> 2): a plain product's units held by a room's carts
and pending orders move from the product's key into the room's share, and
every product a slot shows gets its share, so that every script of the room
touches one Cluster slot.

`products_shown` (wave 2 -> tones): each product learns the rooms that pin
it or drop it (`{product:<id>}:shown`), so `product:updated` reaches them.

`orders_indexed` (-> event numbers): each room's orders in its order index
(`orders:all`) and the settled ones counted (commerce.stats).
Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

from commerce import keys
from commerce.catalog import Catalog
from commerce.shares import Shares

logger = logging.getLogger(__name__)


async def _rooms(redis: Any) -> set[str]:
    rooms = {r.decode() for r in await redis.smembers(keys.SHOP_ROOMS)}
    async for key in redis.scan_iter(match="{room:*}:slots", count=500):
        rooms.add(key.decode()[len("{room:") : -len("}:slots")])
    return rooms


async def _held_in_carts(redis: Any, room: str) -> Counter[str]:
    held: Counter[str] = Counter()
    async for key in redis.scan_iter(match=keys.cart(room, "*"), count=500):
        for name, raw in (await redis.hgetall(key)).items():
            if name.startswith(b"line:p."):
                line = json.loads(raw)
                held[line["product_id"]] += int(line["qty"])
    return held


async def _held_in_orders(redis: Any, room: str) -> Counter[str]:
    held: Counter[str] = Counter()
    ids = set(await redis.zrange(keys.orders_holds(room), 0, -1))
    ids |= set(await redis.zrange(keys.orders_created(room), 0, -1))
    for order_id in ids:
        raw = await redis.hmget(keys.order(room, order_id.decode()), "status", "lines")
        if raw[0] != b"pending":
            continue
        for line in json.loads(raw[1]):
            if not line.get("drop_id"):
                held[line["product_id"]] += int(line["qty"])
    return held


async def _shown(redis: Any, room: str) -> set[str]:
    return {json.loads(v)["product_id"] for v in await redis.hvals(keys.slots(room))}


async def room_shares(redis: Any, now: float) -> int:
    """Give each room its share of the plain products it shows or holds."""
    catalog = Catalog(redis)
    shares = Shares(redis, catalog)
    changed = 0
    for room in sorted(await _rooms(redis)):
        held = await _held_in_carts(redis, room) + await _held_in_orders(redis, room)
        for product_id in sorted(set(held) | await _shown(redis, room)):
            product = await catalog.product(product_id)
            if product is None:
                continue
            await shares.ensure(room, product)
            # A fixed move id: a run that died after this move does not repeat it.
            move_id = f"wave1:{room}:{product_id}"
            n = held[product_id]
            if n and await shares.pull(room, product_id, n, now, field="held", move_id=move_id):
                logger.info("room %s: %d held units of %s moved to its share", room, n, product_id)
            changed += 1
    return changed


async def products_shown(redis: Any, now: float) -> int:
    """Note in each product the rooms whose slots or drops show it."""
    catalog = Catalog(redis)
    noted = 0
    for room in sorted(await _rooms(redis)):
        shown = await _shown(redis, room)
        for raw_id in await redis.zrange(keys.drops(room), 0, -1):
            product_id = await redis.hget(keys.drop(room, raw_id.decode()), "product_id")
            if product_id is not None:
                shown.add(product_id.decode())
        for product_id in sorted(shown):
            await catalog.note_shown(product_id, room)
            noted += 1
    return noted


async def _room_order_ids(redis: Any, room: str) -> list[str]:
    prefix = keys.order(room, "")
    found = []
    async for key in redis.scan_iter(match=keys.order(room, "*"), count=500):
        order_id = key.decode()[len(prefix) :]
        if ":" not in order_id:  # not `:paying`
            found.append(order_id)
    return sorted(found)


async def _count_settled(redis: Any, room: str, raw: list[Any]) -> None:
    status, total, currency, identity = (v.decode() if v else "" for v in raw[1:5])
    stats = keys.stats_orders(room)
    if status in ("paid", "refunded", "failed"):
        await redis.hincrby(stats, "refunded" if status == "refunded" else status, 1)
    if status == "paid":
        await redis.hincrby(stats, f"revenue:{currency.upper()}", int(total))
        await redis.pfadd(keys.stats_buyers(room), identity)
        paid_at = float(raw[5] or raw[0])
        await redis.hincrby(keys.stats_paid(room), str(int(paid_at // 60) * 60), 1)


async def orders_indexed(redis: Any, now: float) -> int:
    """Index each room's existing orders by created_at (`orders:all`, the order
    list) and count the settled ones in the event numbers: an order the index
    did not hold was never counted by the scripts (it was made before them)."""
    indexed = 0
    for room in sorted(await _rooms(redis)):
        for order_id in await _room_order_ids(redis, room):
            fields = ("created_at", "status", "total", "currency", "identity", "paid_at")
            raw = await redis.hmget(keys.order(room, order_id), *fields)
            if raw[0] is None:
                continue
            if await redis.zadd(keys.orders_all(room), {order_id: float(raw[0])}, nx=True):
                await _count_settled(redis, room, raw)
                indexed += 1
    return indexed
