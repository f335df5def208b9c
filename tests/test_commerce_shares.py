"""Rooms' shares of a plain product (commerce.shares): two rooms sell from one
pool without overselling, unpinning gives the units back, and a move that a
dead process left half done is finished once, never twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from commerce import keys
from commerce.carts import AddRequest, Carts
from commerce.catalog import Catalog, Kind, Product
from commerce.drop_store import DropStore
from commerce.shares import Shares
from commerce.slots import Slots
from kernel.errors import SoldOut
from tests.harness import redis_client

T0 = 1_000_000.0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def shop(redis: aioredis.Redis) -> tuple[Catalog, Slots, Carts]:
    catalog = Catalog(redis)
    await catalog.create(Product("tee", "Tee", 2500, "eur", Kind.PHYSICAL, 5))
    slots = Slots(redis, catalog)
    for room in ("a", "b"):
        await slots.pin(room, 1, "tee", "", T0)
    return catalog, slots, Carts(redis, DropStore(redis, catalog), ttl_s=600)


async def test_two_rooms_share_one_pool(shop: tuple[Catalog, Slots, Carts]) -> None:
    catalog, slots, carts = shop
    added = await carts.add("a", "ann", AddRequest("tee", None, 3), T0)
    assert added.moves[0].left == 2  # what room a may still sell: its share and the pool
    assert (await carts.add("b", "bo", AddRequest("tee", None, 2), T0)).moves[0].left == 0
    with pytest.raises(SoldOut):
        await carts.add("a", "cy", AddRequest("tee", None, 1), T0)
    with pytest.raises(SoldOut):
        await carts.add("b", "cy", AddRequest("tee", None, 1), T0)
    _, inv = await catalog.get("tee")
    assert inv is not None and (inv.given, inv.left, inv.held) == (5, 0, 5)
    # Room a lets go of its units and stops showing the tee: room b can have them.
    await carts.remove("a", "ann", "p.tee", T0)
    await slots.unpin("a", 1, T0)
    assert (await carts.add("b", "cy", AddRequest("tee", None, 3), T0)).moves[0].left == 0
    _, inv = await catalog.get("tee")
    assert inv is not None and (inv.given, inv.left, inv.held) == (5, 0, 5)


async def test_half_done_move_is_finished_once(
    shop: tuple[Catalog, Slots, Carts], redis: aioredis.Redis
) -> None:
    catalog, _, _ = shop
    shares = Shares(redis, catalog)
    r: Any = redis
    # A process took 2 units out of the pool and died before the room got them.
    record = {"to": keys.share("a", "tee"), "inbox": keys.room_moves_in("a"), "field": "left"}
    pool = [keys.product("tee"), keys.product_moves("tee"), keys.product_rooms("tee")]
    await r.sadd(keys.SHOP_MOVES, keys.product_moves("tee"))
    out = r.register_script(shares._out.script)
    assert await out(keys=pool, args=["mv_dead", "left", 2, json.dumps(record), "a"]) == 2
    _, inv = await catalog.get("tee")
    assert inv is not None and inv.given == 3  # 2 units are on their way
    assert await shares.resume(T0) == 1
    assert await shares.resume(T0) == 0
    # The same move delivered again (a slow process waking up) adds nothing.
    await shares._deliver(keys.product_moves("tee"), "mv_dead", {**record, "n": 2}, T0)
    _, inv = await catalog.get("tee")
    assert inv is not None and (inv.given, inv.left) == (5, 5)
    assert await r.hget(keys.share("a", "tee"), "left") == b"2"
