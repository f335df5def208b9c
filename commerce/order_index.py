"""The room's order indexes the jobs walk (holds, created, verify, refunds
due): what is due, and the claim of one scheduled Stripe call about an order
with its per-order exponential backoff (commerce/lua/order_claim_check.lua).
Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

from commerce import keys
from commerce.intent_store import StoreBase
from commerce.orders import Order
from commerce.payment import BACKOFF_FIRST_S, BACKOFF_MAX_S


class OrderIndex(StoreBase):
    async def claim_check(
        self,
        index_key: str,
        room: str,
        order_id: str,
        now: float,
        *,
        member: str | None = None,
        offset: float = 0.0,
    ) -> bool:
        """Claim the due Stripe call about an order in `index_key` (its score at
        most `now - offset`) and push the next one back: per-order exponential
        backoff, counted in the order's `checks` field."""
        script_keys = [index_key, keys.order(room, order_id)]
        args = [member or order_id, repr(now - offset), repr(now)]
        args += [repr(BACKOFF_FIRST_S), repr(BACKOFF_MAX_S), repr(offset)]
        return bool(await self._scripts.run("commerce/order_claim_check", script_keys, args))

    async def watch(self, order: Order, now: float) -> None:
        """Have the reconciler ask Stripe about this failed order's intent again."""
        await self._redis.zadd(keys.orders_verify(order.room), {order.id: now}, nx=True)

    async def unwatch(self, room: str, order_id: str) -> None:
        await self._redis.zrem(keys.orders_verify(room), order_id)

    async def due(self, index_key: str, until: float) -> list[str]:
        return [i.decode() for i in await self._redis.zrangebyscore(index_key, "-inf", until)]
