"""Property: whatever the sequence of add, remove, cart expiry, checkout, pay,
fail and hold expiry, every stock keeps `left + held + sold == given`, never
goes below zero, and `held`/`sold` match the carts and orders that hold them."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commerce.carts import AddRequest, Carts
from commerce.catalog import Catalog, Kind, Product
from commerce.checkout import Checkout
from commerce.drop_store import DropStore
from commerce.drops import DropRequest
from commerce.order_store import OrderStore
from commerce.orders import OrderStatus, Reason
from commerce.payment import Intent, IntentStatus
from commerce.settlement import Settlement
from commerce.slots import Slots
from commerce.stripe_gateway import StripeGateway
from kernel.errors import DomainError

ROOM = "prop"
TTL, HOLD = 50.0, 80.0
BUYERS = ["a", "b", "c"]


class FakeGateway:
    """Only what settlement may call when it must refund or cancel."""

    async def refund(self, intent_id: str, idempotency_key: str) -> str:
        return "re_" + intent_id

    async def cancel(self, intent_id: str) -> None:
        return None


ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "remove", "expire", "checkout", "pay", "fail", "hold"]),
        st.sampled_from(BUYERS),
        st.sampled_from(["drop", "tee"]),
        st.integers(min_value=1, max_value=3),
    ),
    max_size=25,
)


async def _scenario(url: str, steps: list[tuple[str, str, str, int]]) -> None:
    redis = aioredis.Redis.from_url(url)
    await redis.flushdb()
    try:
        await _run(redis, steps)
    finally:
        await redis.aclose()


async def _run(redis: aioredis.Redis, steps: list[tuple[str, str, str, int]]) -> None:
    now = 1000.0
    catalog = Catalog(redis)
    drops = DropStore(redis, catalog)
    carts = Carts(redis, drops, TTL)
    orders = OrderStore(redis)
    gateway = cast(StripeGateway, FakeGateway())
    settlement = Settlement(orders, drops, gateway)
    checkout = Checkout(carts, catalog, orders, gateway, settlement, HOLD)
    await catalog.create(Product("tee", "Tee", 500, "eur", Kind.PHYSICAL, 6))
    await Slots(redis, catalog).pin(ROOM, 1, "tee", "", now)  # offered in the room
    drop, _ = await drops.schedule(ROOM, DropRequest("tee", now, now + 10_000, 5, 4), now)
    order_ids: dict[str, str] = {}
    for op, buyer, what, qty in steps:
        now += 1
        try:
            if op == "add":
                req = (
                    AddRequest(None, drop.id, qty)
                    if what == "drop"
                    else AddRequest("tee", None, qty)
                )
                await carts.add(ROOM, buyer, req, now)
            elif op == "remove":
                await carts.remove(ROOM, buyer, f"d.{drop.id}" if what == "drop" else "p.tee", now)
            elif op == "expire":
                now += TTL
                await carts.sweep(ROOM, now)
            elif op == "checkout":
                order, _ = await checkout.freeze(ROOM, buyer, now)
                order_ids[buyer] = order.id
            elif op in ("pay", "fail") and buyer in order_ids:
                order = await orders.get(ROOM, order_ids[buyer])
                if op == "pay":
                    intent = Intent(
                        order.payment_ref or "pi_" + order.id,
                        IntentStatus.SUCCEEDED,
                        order.total,
                        order.currency,
                        None,
                        {"room": ROOM, "order_id": order.id},
                    )
                    await orders.set_intent(order, "test", intent)
                    order = await orders.get(ROOM, order.id)
                    await settlement.apply(order, intent, now)
                else:
                    await settlement.fail(order, Reason.DECLINED, now, cancel=False)
            elif op == "hold":
                now += HOLD
                await settlement.expire_holds(ROOM, now)
        except DomainError:
            pass
        await _check(redis, catalog, drops, carts, orders, order_ids, drop.id)


async def _check(
    redis: aioredis.Redis,
    catalog: Catalog,
    drops: DropStore,
    carts: Carts,
    orders: OrderStore,
    order_ids: dict[str, str],
    drop_id: str,
) -> None:
    held: dict[str, int] = {"drop": 0, "tee": 0}
    sold: dict[str, int] = {"drop": 0, "tee": 0}
    for buyer in BUYERS:
        for line in (await carts.get(ROOM, buyer)).lines:
            held["drop" if line.drop_id else "tee"] += line.qty
    seen: set[str] = set()
    r: Any = redis
    for raw in await r.keys(f"{{room:{ROOM}}}:order:*"):
        order = await orders.get(ROOM, raw.decode().rsplit(":", 1)[1])
        seen.add(order.id)
        for ol in order.lines:
            kind = "drop" if ol.drop_id else "tee"
            if order.status is OrderStatus.PENDING:
                held[kind] += ol.qty
            elif order.status is OrderStatus.PAID:
                sold[kind] += ol.qty
    assert set(order_ids.values()) <= seen
    d = await drops.get(ROOM, drop_id)
    assert d.remaining >= 0 and d.remaining + d.held + d.sold == d.stock == 5
    assert (d.held, d.sold) == (held["drop"], sold["drop"])
    _, inv = await catalog.get("tee")
    assert inv is not None and inv.left >= 0 and inv.left + inv.held + inv.sold == inv.given == 6
    assert (inv.held, inv.sold) == (held["tee"], sold["tee"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=ops)
def test_stock_is_conserved(redis_url: str, steps: list[tuple[str, str, str, int]]) -> None:
    asyncio.run(_scenario(redis_url, steps))
