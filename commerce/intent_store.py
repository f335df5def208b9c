"""An order's PaymentIntents in Redis: who may create the first one (a claim
with a token), the intent it has and those it had (`payment_refs`), what the
current one last said, declined cards, refunds owed per intent, and the
claim on a card confirmation under way. Each change is one script of
commerce/lua/ (intent_*, order_decline). Must not import aiohttp, socketio
or stripe.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.orders import Order
from commerce.payment import Intent
from kernel.lua import Scripts

PAYING_POLL_S = 0.1
CLAIM_STALE_S = 30  # an intent claim older than this is taken over


class StoreBase:
    """The Redis client and its scripts, shared by the parts of the order store."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._scripts = Scripts(redis)


class IntentStore(StoreBase):
    async def claim_intent(self, order: Order, token: str, now: float) -> tuple[str, str]:
        """'has' (and the intent id), 'busy' or 'claimed' (`token` holds the claim)."""
        key = keys.order(order.room, order.id)
        args = [token, repr(now), CLAIM_STALE_S]
        res = await self._scripts.run("commerce/intent_claim", [key], args)
        return res[0].decode(), (res[1].decode() if len(res) > 1 else "")

    async def set_intent(self, order: Order, token: str, intent: Intent) -> bool:
        key = keys.order(order.room, order.id)
        args = [token, intent.id, intent.client_secret or "", str(intent.status)]
        return bool(await self._scripts.run("commerce/intent_set", [key], args))

    async def replace_intent(self, order: Order, replaced: str, intent: Intent) -> bool:
        key = keys.order(order.room, order.id)
        args = [replaced, intent.id, intent.client_secret or "", str(intent.status)]
        return bool(await self._scripts.run("commerce/intent_replace", [key], args))

    async def note_status(self, order: Order, intent: Intent) -> None:
        key = keys.order(order.room, order.id)
        await self._scripts.run(
            "commerce/intent_note_status", [key], [intent.id, str(intent.status)]
        )

    async def release_claim(self, order: Order) -> None:
        await self._redis.hdel(keys.order(order.room, order.id), "pi_claim", "pi_claim_at")

    async def decline(
        self, order: Order, intent: Intent, now: float, hold_s: float, max_attempts: int
    ) -> str:
        """Count a declined card; 'recorded', 'exhausted' or 'noop'."""
        room = order.room
        script_keys = [keys.order(room, order.id), keys.orders_holds(room)]
        script_keys += [keys.log(room), keys.log_head(room)]
        args = [intent.id, (intent.error or "declined")[:200], repr(now), repr(hold_s)]
        args.append(str(max_attempts))
        res = await self._scripts.run("commerce/order_decline", script_keys, args)
        return str(res[0].decode())

    async def owe_refund(self, order: Order, payment_ref: str, now: float) -> bool:
        script_keys = [keys.order(order.room, order.id), keys.refunds_due(order.room)]
        args = [f"{order.id} {payment_ref}", payment_ref, repr(now)]
        return bool(await self._scripts.run("commerce/intent_owe_refund", script_keys, args))

    async def intent_refunded(
        self, room: str, order_id: str, payment_ref: str, refund_ref: str, now: float
    ) -> bool:
        script_keys = [keys.order(room, order_id), keys.refunds_due(room)]
        script_keys += [keys.log(room), keys.log_head(room)]
        args = [f"{order_id} {payment_ref}", payment_ref, refund_ref, repr(now)]
        return bool(await self._scripts.run("commerce/intent_refunded", script_keys, args))

    async def start_paying(self, order: Order, ttl_ms: int) -> bool:
        """Claim the order's card confirmation (one at a time; expires by itself)."""
        key = keys.order_paying(order.room, order.id)
        return bool(await self._redis.set(key, "1", nx=True, px=ttl_ms))

    async def wait_paid_attempt(self, order: Order, timeout_s: float) -> None:
        """Until the card confirmation under way for the order is over (polled)."""
        key = keys.order_paying(order.room, order.id)
        for _ in range(int(timeout_s / PAYING_POLL_S)):
            if not await self._redis.exists(key):
                return
            await asyncio.sleep(PAYING_POLL_S)

    async def done_paying(self, order: Order) -> None:
        await self._redis.delete(keys.order_paying(order.room, order.id))
