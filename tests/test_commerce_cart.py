"""Carts and reservations against a real Redis: add, remove, limits, windows,
expiry returning stock, and the drop state announced once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from commerce import keys
from commerce.carts import AddRequest, Carts
from commerce.catalog import Catalog, Kind, Product
from commerce.drop_store import DropStore
from commerce.drops import DropRequest
from commerce.slots import Slots
from kernel.errors import Conflict, LimitReached, NotFound, SoldOut
from tests.harness import redis_client

ROOM = "r1"
T0 = 1_000_000.0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def shop(redis: aioredis.Redis) -> tuple[Catalog, DropStore, Carts]:
    catalog = Catalog(redis)
    drops = DropStore(redis, catalog)
    await catalog.create(Product("tee", "Tee", 2500, "eur", Kind.PHYSICAL, 3))
    await catalog.create(Product("ebook", "Ebook", 900, "eur", Kind.DIGITAL, None))
    await catalog.create(Product("usd", "Cap", 900, "usd", Kind.PHYSICAL, None))
    await catalog.create(Product("hidden", "Not on offer", 900, "eur", Kind.PHYSICAL, None))
    slots = Slots(redis, catalog)
    for number, product_id in enumerate(("tee", "ebook", "usd"), start=1):
        await slots.pin(ROOM, number, product_id, "", T0)
    return catalog, drops, Carts(redis, drops, ttl_s=600)


async def _drop(
    drops: DropStore, stock: int = 2, limit: int | None = 1, ends: float = T0 + 100
) -> str:
    req = DropRequest("tee", T0 + 10, ends, stock, limit)
    drop, _ = await drops.schedule(ROOM, req, T0)
    assert drop.state(T0) == "scheduled"
    return drop.id


async def test_add_product_reserves_and_sells_out(shop: tuple[Catalog, DropStore, Carts]) -> None:
    catalog, _, carts = shop
    change = await carts.add(ROOM, "alice", AddRequest("tee", None, 2), T0)
    assert change.cart.total == 5000 and change.cart.currency == "eur"
    assert change.moves[0].left == 1
    with pytest.raises(SoldOut):
        await carts.add(ROOM, "bob", AddRequest("tee", None, 2), T0)
    _, inv = await catalog.get("tee")
    assert inv is not None and (inv.left, inv.held) == (1, 2)
    change = await carts.remove(ROOM, "alice", "p.tee", T0)
    assert change.cart.lines == ()
    _, inv = await catalog.get("tee")
    assert inv is not None and (inv.left, inv.held) == (3, 0)


async def test_currency_mix_and_unknown(shop: tuple[Catalog, DropStore, Carts]) -> None:
    _, _, carts = shop
    await carts.add(ROOM, "alice", AddRequest("ebook", None, 1), T0)
    with pytest.raises(Conflict):
        await carts.add(ROOM, "alice", AddRequest("usd", None, 1), T0)
    with pytest.raises(NotFound):
        await carts.add(ROOM, "alice", AddRequest("nope", None, 1), T0)
    with pytest.raises(Conflict):  # in the catalog, but no slot of this room offers it
        await carts.add(ROOM, "alice", AddRequest("hidden", None, 1), T0)
    with pytest.raises(Conflict):  # offered in another room, not this one
        await carts.add("elsewhere", "alice", AddRequest("tee", None, 1), T0)
    with pytest.raises(NotFound):
        await carts.add(ROOM, "alice", AddRequest(None, "drop_nope", 1), T0)
    cart = await carts.get(ROOM, "alice")
    assert [line.line_id for line in cart.lines] == ["p.ebook"]


async def test_drop_window_limit_and_sold_out(shop: tuple[Catalog, DropStore, Carts]) -> None:
    _, drops, carts = shop
    drop_id = await _drop(drops)
    with pytest.raises(Conflict):
        await carts.add(ROOM, "alice", AddRequest(None, drop_id, 1), T0)
    assert [e.payload["drop"]["state"] for e in await drops.tick(ROOM, T0 + 10)] == ["live"]
    assert await drops.tick(ROOM, T0 + 11) == []
    await carts.add(ROOM, "alice", AddRequest(None, drop_id, 1), T0 + 11)
    with pytest.raises(LimitReached):
        await carts.add(ROOM, "alice", AddRequest(None, drop_id, 1), T0 + 11)
    change = await carts.add(ROOM, "bob", AddRequest(None, drop_id, 1), T0 + 12)
    assert [e.payload["drop"]["state"] for e in change.events] == ["sold_out"]
    with pytest.raises(SoldOut):
        await carts.add(ROOM, "carol", AddRequest(None, drop_id, 1), T0 + 12)
    with pytest.raises(Conflict):
        await carts.add(ROOM, "carol", AddRequest(None, drop_id, 1), T0 + 100)


async def test_expiry_returns_stock_and_tells_buyer(
    shop: tuple[Catalog, DropStore, Carts], redis: aioredis.Redis
) -> None:
    _, drops, carts = shop
    drop_id = await _drop(drops, stock=1, ends=T0 + 5000)
    await drops.tick(ROOM, T0 + 10)
    await carts.add(ROOM, "alice", AddRequest(None, drop_id, 1), T0 + 10)
    await carts.add(ROOM, "alice", AddRequest("tee", None, 1), T0 + 20)
    assert await carts.sweep(ROOM, T0 + 600) == []
    changes = await carts.sweep(ROOM, T0 + 620)
    assert len(changes) == 1
    names = [(e.name, e.identity) for e in changes[0].events]
    assert ("cart:updated", "alice") in names
    assert ("drop:updated", None) in names
    drop = await drops.get(ROOM, drop_id)
    assert (drop.remaining, drop.held, drop.state(T0 + 620)) == (1, 0, "live")
    assert await redis.hlen(keys.drop_buyers(ROOM, drop_id)) == 0
    assert (await carts.get(ROOM, "alice")).lines == ()
