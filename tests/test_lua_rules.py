"""Rules that live in Lua and in Python both, run through the real Redis and
compared: the drop's state (commerce/lua/drop_state.lua against
commerce.drops.derive_state), the drop's sale window in the reservation
script, the stock arithmetic (commerce/lua/stock.lua keeps given == left
+ held + sold, as commerce.catalog.Inventory promises) and the per-order
backoff of Stripe checks (order_claim_check.lua against payment.backoff_s)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from commerce import keys
from commerce.carts import AddRequest, Carts
from commerce.catalog import Catalog, Kind, Product, inventory_from_hash
from commerce.drop_store import DropStore
from commerce.drops import DropRequest, DropState, derive_state
from commerce.order_store import OrderStore
from commerce.payment import backoff_s
from kernel.errors import Conflict
from kernel.lua import source
from tests.harness import redis_client

T0 = 1_000_000.0
STARTS, ENDS = T0 + 10, T0 + 100

# (starts, ends, remaining, now): every boundary of derive_state.
STATE_CASES = [
    (STARTS, ENDS, 5, STARTS - 0.5),
    (STARTS, ENDS, 5, STARTS),  # now == starts: live
    (STARTS, ENDS, 5, STARTS + 0.001),
    (STARTS, ENDS, 5, ENDS - 0.001),
    (STARTS, ENDS, 5, ENDS),  # now == ends: ended
    (STARTS, ENDS, 5, ENDS + 1),
    (STARTS, ENDS, 0, STARTS),  # left 0 while live: sold out
    (STARTS, ENDS, 0, STARTS - 1),  # left 0 before: still scheduled
    (STARTS, ENDS, 0, ENDS),  # left 0 after: ended
    (STARTS, ENDS, -1, STARTS + 1),  # below zero (never written) reads sold out
    (STARTS, ENDS, 1, STARTS + 1),
    (STARTS, STARTS, 5, STARTS),  # an empty window is over when it starts
    (1733184000.25, 1733184060.75, 3, 1733184060.7499),  # sub-second epoch times
]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.mark.parametrize(("starts", "ends", "left", "now"), STATE_CASES)
async def test_lua_drop_state_is_derive_state(
    redis: aioredis.Redis, starts: float, ends: float, left: int, now: float
) -> None:
    r: Any = redis
    script = r.register_script(
        source("commerce/drop_state")
        + "return drop_state(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),"
        + " tonumber(ARGV[4]))"
    )
    # Arguments as the scripts get them: repr of the float, str of the int.
    got = await script(keys=[], args=[repr(starts), repr(ends), str(left), repr(now)])
    assert got.decode() == derive_state(starts, ends, left, now)


@pytest.mark.parametrize(
    "now", [STARTS - 1, STARTS - 0.001, STARTS, STARTS + 0.001, ENDS - 0.001, ENDS, ENDS + 1]
)
async def test_a_drop_is_reservable_exactly_when_derive_state_says_live(
    redis: aioredis.Redis, now: float
) -> None:
    catalog = Catalog(redis)
    drops = DropStore(redis, catalog)
    await catalog.create(Product("tee", "Tee", 2500, "eur", Kind.PHYSICAL, None))
    drop, _ = await drops.schedule("r1", DropRequest("tee", STARTS, ENDS, 5, None), T0)
    carts = Carts(redis, drops, ttl_s=600)
    live = derive_state(STARTS, ENDS, 5, now) is DropState.LIVE
    if live:
        change = await carts.add("r1", "alice", AddRequest(None, drop.id, 1), now)
        assert change.moves[0].left == 4
    else:
        with pytest.raises(Conflict, match="not live"):
            await carts.add("r1", "alice", AddRequest(None, drop.id, 1), now)


_STOCK_OPS = """
local op, q = ARGV[1], tonumber(ARGV[2])
if op == 'hold' then hold_units(KEYS[1], q)
elseif op == 'release' then release_units(KEYS[1], KEYS[2], 'alice', q)
else sell_units(KEYS[1], q) end
return left_of(KEYS[1])
"""


@pytest.mark.parametrize("tracked", [True, False])
async def test_stock_moves_keep_given_equal_to_left_held_sold(
    redis: aioredis.Redis, tracked: bool
) -> None:
    r: Any = redis
    stock, buyers = keys.share("r1", "tee"), keys.share_buyers("r1", "tee")
    given = 50
    await r.hset(
        stock,
        mapping={"tracked": "1" if tracked else "0", "given": given, "left": given},
    )
    await r.hset(stock, mapping={"held": 0, "sold": 0})
    script = r.register_script(source("commerce/stock") + _STOCK_OPS)
    model = {"left": given, "held": 0, "sold": 0}  # the Python model of the same moves
    rng = random.Random(9)
    for _ in range(200):
        op = rng.choice(["hold", "release", "sell"])
        src = "left" if op == "hold" else "held"
        q = rng.randint(1, 3)
        if model[src] < q:  # the scripts check before they move
            continue
        await r.hset(buyers, "alice", 100)
        left = await script(keys=[stock, buyers], args=[op, q])
        if tracked:
            dst = {"hold": "held", "release": "left", "sell": "sold"}[op]
            model[src] -= q
            model[dst] += q
            inv = inventory_from_hash(await r.hgetall(stock))
            assert inv is not None
            assert (inv.left, inv.held, inv.sold) == (model["left"], model["held"], model["sold"])
            assert inv.given == inv.left + inv.held + inv.sold == given
            assert left == inv.left
        else:  # untracked: no unit moves, whatever the op
            raw = await r.hmget(stock, "left", "held", "sold")
            assert [int(v) for v in raw] == [given, 0, 0] and left == given


@pytest.mark.parametrize("checks", [None, 0, 1, 2, 5, 6, 7, 19, 20, 21, 40])
async def test_lua_check_backoff_is_backoff_s(redis: aioredis.Redis, checks: int | None) -> None:
    """The claim of a scheduled Stripe call pushes the next one back by
    commerce.payment.backoff_s of the order's count of checks (none for an
    order gone: the first delay)."""
    r: Any = redis
    orders = OrderStore(redis)
    index = keys.orders_holds("r1")
    await r.zadd(index, {"ord_1": T0 - 10})  # due: at most now - offset
    if checks is not None:
        await r.hset(keys.order("r1", "ord_1"), "checks", checks)
    assert await orders.claim_check(index, "r1", "ord_1", T0, offset=5.0)
    expected = backoff_s(0 if checks is None else checks + 1)
    assert await r.zscore(index, "ord_1") == T0 + expected - 5.0
    # Not due any more: a second claim at the same time is refused.
    assert not await orders.claim_check(index, "r1", "ord_1", T0, offset=5.0)
