"""Checkout: freeze the buyer's cart into a pending order whose hold lasts
until the payment resolves (bounded by `hold_s`), then give it one Stripe
PaymentIntent and, given a payment method, confirm it.

Our own idempotency: a repeat of `checkout:start` after the cart was frozen
finds the buyer's pending order and its intent (one creator per order,
claimed in Redis), so it answers the same order and the same intent. Load,
then calculate, then act. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from commerce.carts import EMPTY, Cart, Carts
from commerce.catalog import MAX_PRICE, Catalog
from commerce.order_store import OrderStore
from commerce.orders import Order, OrderLine, OrderStatus, lines_json, new_order_id
from commerce.stripe_gateway import Intent, StripeGateway
from kernel.errors import Conflict, Invalid, Unavailable
from kernel.events import Event, to_identity

logger = logging.getLogger(__name__)

PAYMENT_METHOD_RE = re.compile(r"^(pm|card|src)_[A-Za-z0-9_]{1,120}$")
FREEZE_RETRIES = 3
CLAIM_WAIT_S = 10.0


def parse_payment_method(p: Mapping[str, Any]) -> str | None:
    value = p.get("payment_method")
    if value is None:
        return None
    if not isinstance(value, str) or not PAYMENT_METHOD_RE.match(value):
        raise Invalid("payment_method must be a Stripe payment method id (pm_...)")
    return value


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    order: Order
    intent: Intent
    events: list[Event] = field(default_factory=list)

    def answer(self, publishable_key: str) -> dict[str, Any]:
        return {
            "order_id": self.order.id,
            "amount": self.order.total,
            "currency": self.order.currency,
            "status": self.intent.status,
            "client_secret": self.intent.client_secret,
            "payment_ref": self.intent.id,
            "publishable_key": publishable_key,
            "order": self.order.as_dict(),
        }


class Checkout:
    def __init__(
        self,
        carts: Carts,
        catalog: Catalog,
        orders: OrderStore,
        gateway: StripeGateway,
        hold_s: float,
    ) -> None:
        self._carts = carts
        self._catalog = catalog
        self._orders = orders
        self._gateway = gateway
        self._hold_s = hold_s

    async def start(
        self, room: str, identity: str, payment_method: str | None, now: float
    ) -> CheckoutResult:
        order, events = await self.freeze(room, identity, now)
        intent = await self._intent_of(order, payment_method, now)
        if payment_method and intent.status == "requires_payment_method":
            intent = await self._another_card(order, intent, payment_method)
        if payment_method and intent.status == "requires_confirmation":
            intent = await self._gateway.confirm(intent.id)
        if payment_method:
            logger.info("room %s: order %s payment is %s", room, order.id, intent.status)
        order = await self._orders.get(room, order.id)
        return CheckoutResult(order, intent, events)

    async def freeze(self, room: str, identity: str, now: float) -> tuple[Order, list[Event]]:
        """The buyer's pending order: the cart frozen now, or the one frozen before."""
        events: list[Event] = []
        for _ in range(FREEZE_RETRIES):
            pending = await self._orders.pending_of(room, identity)
            cart = await self._carts.get(room, identity)
            if not cart.lines:
                if pending is None:
                    raise Invalid("the cart is empty")
                return await self._orders.get(room, pending), events  # a repeat
            if pending is not None:
                raise Conflict(f"order {pending} is waiting for its payment")
            order = await self._order_for(room, identity, cart, now)
            if await self._orders.freeze(order, cart.version, lines_json(order.lines)) == "ok":
                logger.info("room %s: order %s of %s created", room, order.id, identity)
                events.append(
                    to_identity(room, identity, "cart:updated", {"cart": EMPTY.as_dict()})
                )
                events.append(
                    to_identity(room, identity, "order:updated", {"order": order.as_dict()})
                )
                return order, events
        raise Conflict("the cart kept changing; try again")

    async def _order_for(self, room: str, identity: str, cart: Cart, now: float) -> Order:
        lines = []
        for line in cart.lines:
            found = await self._catalog.find(line.product_id)
            title = found[0].title if found else line.product_id
            lines.append(
                OrderLine(
                    line.line_id, line.product_id, line.drop_id, title, line.qty, line.unit_price
                )
            )
        if cart.total > MAX_PRICE:
            raise Invalid("the cart's total is above what one payment may take")
        return Order(
            id=new_order_id(),
            room=room,
            identity=identity,
            status=OrderStatus.PENDING,
            lines=tuple(lines),
            total=cart.total,
            currency=cart.currency or "",
            created_at=now,
            hold_until=now + self._hold_s,
        )

    async def _intent_of(self, order: Order, payment_method: str | None, now: float) -> Intent:
        if order.status is not OrderStatus.PENDING:
            raise Conflict(f"order {order.id} is {order.status.wire}")
        token = secrets.token_hex(8)
        deadline = now + CLAIM_WAIT_S
        while True:
            state, ref = await self._orders.claim_intent(order, token, now)
            if state == "has":
                return await self._gateway.retrieve(ref)
            if state == "claimed":
                return await self._create_intent(order, token, payment_method)
            await asyncio.sleep(0.05)  # another request is creating it right now
            now += 0.05
            if now > deadline:
                raise Unavailable("the payment is being prepared; try again")

    async def _another_card(self, order: Order, declined: Intent, payment_method: str) -> Intent:
        """After a decline the order stays open for another card: a fresh intent
        takes the declined one's place (swapped in one script, only from the
        intent seen declined), then the declined one is cancelled. Reports
        about it, early or late, no longer match the order; should it succeed
        anyway (confirmed elsewhere with its client secret), the webhook
        refunds it."""
        metadata = {"order_id": order.id, "room": order.room, "identity": order.identity}
        fresh = await self._gateway.create_intent(
            order.total,
            order.currency,
            metadata,
            f"order-{order.id}-after-{declined.id}",
            payment_method,
        )
        if not await self._orders.replace_intent(
            order, declined.id, fresh.id, fresh.client_secret or ""
        ):
            await self._gateway.cancel(fresh.id)
            raise Conflict(f"order {order.id} changed while paying; look at it again")
        if await self._gateway.cancel(declined.id) is None:
            logger.warning(
                "room %s: order %s: replaced intent %s could not be cancelled",
                order.room,
                order.id,
                declined.id,
            )
        logger.info("room %s: order %s pays again with intent %s", order.room, order.id, fresh.id)
        return fresh

    async def _create_intent(self, order: Order, token: str, payment_method: str | None) -> Intent:
        metadata = {"order_id": order.id, "room": order.room, "identity": order.identity}
        try:
            intent = await self._gateway.create_intent(
                order.total, order.currency, metadata, f"order-{order.id}", payment_method
            )
        except BaseException:
            await self._orders.release_claim(order)
            raise
        await self._orders.set_intent(order, token, intent.id, intent.client_secret or "")
        logger.info("room %s: order %s has intent %s", order.room, order.id, intent.id)
        return intent
