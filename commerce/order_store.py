"""Orders in Redis: every status change is one script that checks the
current status first (so each transition happens exactly once however many
webhooks, reconcilers or processes race for it), moves the stock of the
order's lines and appends to the room's hash-chained log
(commerce/lua/order_freeze.lua, order_settle.lua).

Transitions: freeze (cart -> pending), paid (pending -> paid, held -> sold;
failed -> refund_due), failed / expire (pending -> failed, held -> left),
refunded (refund_due -> refunded; paid -> refunded, out of the buyer's
library). The paid transition stores the order's entitlements (the exact
files bought, commerce.entitlements) and adds it to the buyer's library. The order's intents live in
commerce.intent_store, the jobs' indexes in commerce.order_index; OrderStore
is the three together. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from commerce import keys
from commerce.intent_store import IntentStore
from commerce.inventory import StockMove, Target
from commerce.order_index import OrderIndex
from commerce.orders import Order, order_from_hash
from kernel.errors import NotFound


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settle script did: the outcome word and the stock it moved."""

    outcome: str  # paid, failed, refund_due, refunded, noop
    moves: tuple[StockMove, ...] = ()


# Told of each status change the moment its script made it (exactly once):
# the order as it was before, and the outcome (paid, failed, refunded, refund_due).
SettledListener = Callable[[Order, str], None]


class OrderStore(IntentStore, OrderIndex):
    on_settled: SettledListener | None = None  # server.numbers.metrics counts them

    async def find(self, room: str, order_id: str) -> Order | None:
        raw = await self._redis.hgetall(keys.order(room, order_id))
        return order_from_hash(raw) if raw else None

    async def get(self, room: str, order_id: str) -> Order:
        order = await self.find(room, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return order

    async def recent_of(self, room: str, identity: str, limit: int = 10) -> list[Order]:
        """The buyer's latest orders in the room, newest first."""
        ids = await self._redis.zrevrange(keys.buyer_orders(room, identity), 0, limit - 1)
        found = [await self.find(room, raw.decode()) for raw in ids]
        return [order for order in found if order is not None]

    async def pending_of(self, room: str, identity: str) -> str | None:
        raw = await self._redis.get(keys.buyer_pending(room, identity))
        return raw.decode() if raw else None

    async def freeze(self, order: Order, version: str, lines: str) -> str:
        """Turn the buyer's cart (at `version`) into `order`: 'ok', 'stale',
        'pending' (the buyer has one waiting: the cart stays) or raises."""
        room, identity = order.room, order.identity
        script_keys = [keys.cart(room, identity), keys.carts_expiry(room)]
        script_keys += [keys.order(room, order.id), keys.orders_holds(room)]
        script_keys += [keys.orders_created(room), keys.buyer_pending(room, identity)]
        script_keys += [keys.log(room), keys.log_head(room), keys.buyer_orders(room, identity)]
        script_keys += [keys.orders_all(room)]
        args = [identity, version, order.id, repr(order.created_at), repr(order.hold_until)]
        args += [lines, str(order.total), order.currency, room, str(order.max_attempts)]
        args += [order.email or "", order.shipping.to_json() if order.shipping else ""]
        res = await self._scripts.run("commerce/order_freeze", script_keys, args)
        return str(res[0].decode())

    async def add_details(self, order: Order, email: str | None, shipping: str | None) -> bool:
        """Give a pending order the details it lacks (what it has stays)."""
        args = [email or "", shipping or ""]
        key = keys.order(order.room, order.id)
        return bool(await self._scripts.run("commerce/order_details", [key], args))

    async def settle(
        self,
        order: Order,
        action: str,
        now: float,
        *,
        payment_ref: str = "",
        reason: str = "",
        receipt: dict[str, Any] | None = None,
        refund_ref: str = "",
        entitlements: str = "",
    ) -> Settled:
        room = order.room
        script_keys = [keys.order(room, order.id), keys.orders_holds(room)]
        script_keys += [keys.orders_created(room), keys.buyer_pending(room, order.identity)]
        script_keys += [keys.orders_refund_due(room), keys.log(room), keys.log_head(room)]
        script_keys += [keys.buyer_library(room, order.identity), keys.stats_orders(room)]
        script_keys += [keys.stats_paid(room), keys.stats_buyers(room)]
        args: list[Any] = [action, repr(now), payment_ref, reason]
        args += [json.dumps(receipt) if receipt else "", refund_ref, entitlements]
        for line in order.lines:
            target = Target(room, line.product_id, line.drop_id)
            script_keys += [target.stock_key, target.buyers_key]
            args += [line.line_id, line.drop_id or "", line.qty]
        done = _settled(await self._scripts.run("commerce/order_settle", script_keys, args))
        if self.on_settled is not None and done.outcome != "noop":
            self.on_settled(order, done.outcome)
        return done


def _settled(res: Sequence[Any]) -> Settled:
    outcome = res[0].decode()
    rest = res[1:] if outcome == "failed" else []
    moves = tuple(
        StockMove(rest[i].decode(), int(rest[i + 1]), rest[i + 2].decode())
        for i in range(0, len(rest), 3)
    )
    return Settled(outcome, moves)
