"""The intent claim: only the holder of the claim's token sets the order's
first PaymentIntent, so a claimer presumed dead (its claim taken over) that
wakes up late cannot point the order at its intent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from commerce import keys
from commerce.intent_store import CLAIM_STALE_S
from commerce.order_store import OrderStore
from commerce.orders import Order
from commerce.payment import Intent, IntentStatus
from tests.harness import redis_client

ROOM = "r1"
T0 = 1_000_000.0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_client(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def _pending_order(redis: aioredis.Redis) -> Order:
    r: Any = redis
    await r.hset(
        keys.order(ROOM, "ord_1"),
        mapping={
            "id": "ord_1",
            "room": ROOM,
            "identity": "alice",
            "status": "pending",
            "lines": json.dumps([]),
            "total": 2500,
            "currency": "eur",
            "created_at": repr(T0),
            "hold_until": repr(T0 + 900),
        },
    )
    return await OrderStore(redis).get(ROOM, "ord_1")


def _intent(ref: str) -> Intent:
    return Intent(ref, IntentStatus.REQUIRES_PAYMENT_METHOD, 2500, "eur", ref + "_secret")


async def test_a_stale_claimers_intent_is_refused(redis: aioredis.Redis) -> None:
    orders = OrderStore(redis)
    order = await _pending_order(redis)
    assert await orders.claim_intent(order, "slow", T0) == ("claimed", "")
    assert await orders.claim_intent(order, "fast", T0 + 1) == ("busy", "")
    # "slow" is presumed dead: its claim is taken over.
    assert await orders.claim_intent(order, "fast", T0 + CLAIM_STALE_S + 1) == ("claimed", "")
    assert not await orders.set_intent(order, "slow", _intent("pi_slow"))
    assert await orders.set_intent(order, "fast", _intent("pi_fast"))
    fresh = await orders.get(ROOM, order.id)
    assert fresh.payment_ref == "pi_fast" and fresh.client_secret == "pi_fast_secret"
    assert fresh.refs == {"pi_fast"}  # the stale intent is not in its history


async def test_the_claimer_sets_the_intent_once(redis: aioredis.Redis) -> None:
    orders = OrderStore(redis)
    order = await _pending_order(redis)
    assert await orders.claim_intent(order, "only", T0) == ("claimed", "")
    assert await orders.set_intent(order, "only", _intent("pi_1"))
    assert not await orders.set_intent(order, "only", _intent("pi_2"))
    assert await orders.claim_intent(order, "later", T0 + 1) == ("has", "pi_1")
