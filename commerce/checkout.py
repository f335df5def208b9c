"""Checkout: freeze the buyer's cart into a pending order whose hold lasts
until the payment resolves (bounded by `hold_s`), then give it one Stripe
PaymentIntent and, given a payment method, confirm it.

Our own idempotency: a repeat of `checkout:start` while the buyer has an
order waiting for its payment (a reloaded page, a double click, a flood)
answers that order and its intent from what we hold (the intent's id,
status and client secret are kept on the order; one creator per order,
claimed in Redis; one card confirmation at a time per order), so repeats
cost no Stripe call. Intent creations carry a key that changes with their
parameters (commerce.payment.idempotency_key). Load, then calculate, then
act. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from commerce.buyer_details import NONE, SHIPPING_REQUIRED, BuyerDetails
from commerce.buyers import BuyerIndex
from commerce.carts import EMPTY, Cart, Carts
from commerce.catalog import MAX_PRICE, Catalog, Kind
from commerce.customers import SAVED_ON, Customers, SavedCard
from commerce.events import CART_UPDATED, ORDER_UPDATED
from commerce.order_store import OrderStore
from commerce.orders import Order, OrderLine, OrderStatus, Reason, lines_json, new_order_id
from commerce.payment import (
    Intent,
    IntentStatus,
    idempotency_key,
    marker,
    needs_card,
    needs_new_intent,
)
from commerce.settlement import Settlement
from commerce.stripe_gateway import StripeGateway
from kernel.errors import Conflict, Invalid, NotFound, Unavailable
from kernel.events import Event, to_identity

logger = logging.getLogger(__name__)

PAYMENT_METHOD_RE = re.compile(r"^(pm|card|src)_[A-Za-z0-9_]{1,120}$")
FREEZE_RETRIES = 3
CLAIM_WAIT_S = 10.0
PAYING_LOCK_MS = 30_000  # a card confirmation in flight (Stripe answers well within it)


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
    saved_card: SavedCard | None = None  # the card this checkout saved (save_card)

    def answer(self, publishable_key: str) -> dict[str, Any]:
        saved = {"saved_card": self.saved_card.as_dict()} if self.saved_card else {}
        return saved | {
            "order_id": self.order.id,
            "amount": self.order.total,
            "currency": self.order.currency,
            "status": str(self.intent.status),
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
        settlement: Settlement,
        hold_s: float,
    ) -> None:
        self._carts = carts
        self._catalog = catalog
        self._orders = orders
        self._buyers = BuyerIndex(orders._redis)
        self.customers = Customers(orders._redis, gateway)
        self._gateway = gateway
        self._settlement = settlement
        self._hold_s = hold_s

    async def start(
        self,
        room: str,
        identity: str,
        payment_method: str | None,
        now: float,
        details: BuyerDetails = NONE,
    ) -> CheckoutResult:
        """Freeze and pay in one go (the events of the freeze ride along)."""
        order, events = await self.freeze(room, identity, now, details)
        result = await self.pay(order, payment_method, now, save_card=details.save_card)
        return CheckoutResult(
            result.order, result.intent, events + result.events, result.saved_card
        )

    async def freeze(
        self, room: str, identity: str, now: float, details: BuyerDetails = NONE
    ) -> tuple[Order, list[Event]]:
        """The buyer's pending order: the one waiting for its payment (a reload
        resumes it; the cart stays as it is; it keeps its details and may take
        those it lacks), or the cart frozen now with the buyer's details."""
        events: list[Event] = []
        for _ in range(FREEZE_RETRIES):
            found = await self._pending(room, identity)
            if found is not None:
                return await self._resumed(found, details), events
            cart = await self._carts.get(room, identity)
            if not cart.lines:
                # A concurrent call may have frozen the cart between the two reads.
                found = await self._pending(room, identity)
                if found is not None:
                    return await self._resumed(found, details), events
                return await self._just_paid(room, identity, now), events
            order = await self._order_for(room, identity, cart, now, details)
            await self._buyers.note(identity, room)
            if await self._orders.freeze(order, cart.version, lines_json(order.lines)) == "ok":
                logger.info("room %s: order %s of %s created", room, order.id, identity)
                events.append(to_identity(room, identity, CART_UPDATED, {"cart": EMPTY.as_dict()}))
                events.append(
                    to_identity(room, identity, ORDER_UPDATED, {"order": order.as_dict()})
                )
                return order, events
        raise Conflict("the cart kept changing; try again")

    async def _resumed(self, order: Order, details: BuyerDetails) -> Order:
        physical = await self.is_physical(order.lines)
        email = details.email if not order.email else None
        shipping = details.shipping if physical and not order.shipping else None
        if email or shipping:
            shipping_json = shipping.to_json() if shipping else None
            await self._orders.add_details(order, email, shipping_json)
            order = await self._orders.get(order.room, order.id)
        if physical and order.shipping is None and order.status is OrderStatus.PENDING:
            raise Invalid(SHIPPING_REQUIRED)
        return order

    async def is_physical(self, lines: tuple[OrderLine, ...]) -> bool:
        """Whether any line is a physical item (then the order ships)."""
        for line in lines:
            found = await self._catalog.find(line.product_id)
            if found is not None and found[0].kind is Kind.PHYSICAL:
                return True
        return False

    async def _pending(self, room: str, identity: str) -> Order | None:
        pending = await self._orders.pending_of(room, identity)
        found = await self._orders.find(room, pending) if pending is not None else None
        return found if found is not None and found.status is OrderStatus.PENDING else None

    async def _just_paid(self, room: str, identity: str, now: float) -> Order:
        """A repeat that arrives after its order was paid (a double click, a
        second tab) answers that order; otherwise an empty cart is `invalid`."""
        latest = await self._orders.recent_of(room, identity, limit=1)
        if latest and latest[0].status is OrderStatus.PAID:
            if now - latest[0].created_at < self._hold_s:
                return latest[0]
        raise Invalid("the cart is empty")

    async def _order_for(
        self, room: str, identity: str, cart: Cart, now: float, details: BuyerDetails
    ) -> Order:
        lines, physical = [], False
        for line in cart.lines:
            found = await self._catalog.find(line.product_id)
            title = found[0].title if found else line.product_id
            physical = physical or (found is not None and found[0].kind is Kind.PHYSICAL)
            lines.append(
                OrderLine(
                    line.line_id, line.product_id, line.drop_id, title, line.qty, line.unit_price
                )
            )
        if cart.total > MAX_PRICE:
            raise Invalid("the cart's total is above what one payment may take")
        if physical and details.shipping is None:
            raise Invalid(SHIPPING_REQUIRED)
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
            max_attempts=self._settlement.max_attempts,
            email=details.email,
            # An address given for an order that ships nothing is not kept.
            shipping=details.shipping if physical else None,
        )

    async def pay(
        self, order: Order, payment_method: str | None, now: float, *, save_card: bool = False
    ) -> CheckoutResult:
        """The order's intent (answered from what we hold when we have it) and,
        given a card, its confirmation: one at a time per order; a concurrent
        repeat answers what we hold. `save_card` (a signed-in buyer's card):
        the card is attached to the account's Customer first and kept as the
        saved card unless the payment is declined."""
        if order.status is OrderStatus.PAID and order.payment_ref:
            return CheckoutResult(order, _held(order) or await self._retrieve(order))
        if order.status is not OrderStatus.PENDING:
            raise Conflict(f"order {order.id} is {order.status.wire}")
        customer, attached = None, None
        if save_card and payment_method:
            customer = await self.customers.customer_of(order.identity, order.email)
            if customer is not None:
                attached = await self.customers.attach(order.identity, customer, payment_method)
                payment_method = attached.id
        result = await self._pay(order, payment_method, now)
        if customer is None or attached is None:
            return result
        if result.intent.status in SAVED_ON:
            saved = await self.customers.keep(order.identity, customer, attached)
            return CheckoutResult(result.order, result.intent, result.events, saved)
        await self.customers.forget_attached(attached)
        return result

    async def _pay(self, order: Order, payment_method: str | None, now: float) -> CheckoutResult:
        intent, created_with_card = await self._intent_of(order, payment_method, now)
        events: list[Event] = []
        if (payment_method and needs_card(order, intent)) or intent.id in order.declined:
            # A card to confirm; or a resume after a decline, which gets a
            # fresh intent so the answer's client_secret is usable.
            intent, events = await self._with_card(order, payment_method, created_with_card, now)
        order = await self._orders.get(order.room, order.id)
        return CheckoutResult(order, intent, events)

    async def cancel(
        self, room: str, identity: str, order_id: str, now: float
    ) -> tuple[Order, list[Event]]:
        """The buyer abandons their order waiting for payment: its intent is
        cancelled first (an intent that already took the money settles the
        order instead), then the order fails and its stock goes back."""
        order = await self._orders.find(room, order_id)
        if order is None or order.identity != identity:
            raise NotFound(f"no order {order_id}")
        if order.status is not OrderStatus.PENDING:
            raise Conflict(f"order {order_id} is {order.status.wire}")
        events: list[Event] = []
        if order.payment_ref and await self._gateway.cancel(order.payment_ref) is None:
            intent = await self._gateway.retrieve(order.payment_ref)
            events += await self._settlement.apply(order, intent, now)
            order = await self._orders.get(room, order_id)
            if order.status is not OrderStatus.PENDING:
                return order, events  # it was paid (or settled) meanwhile
            if not intent.stopped:
                raise Conflict(f"order {order_id}'s payment is under way")
        events += await self._settlement.fail(order, Reason.CANCELED_BY_BUYER, now, cancel=False)
        logger.info("room %s: order %s canceled by its buyer", room, order_id)
        return await self._orders.get(room, order_id), events

    async def _retrieve(self, order: Order) -> Intent:
        intent = await self._gateway.retrieve(order.payment_ref or "")
        await self._orders.note_status(order, intent)
        return intent

    async def _with_card(
        self, order: Order, payment_method: str | None, created_with_card: bool, now: float
    ) -> tuple[Intent, list[Event]]:
        if not await self._orders.start_paying(order, PAYING_LOCK_MS):
            # Another request is confirming a card for this order (a double
            # click, another tab): wait for its outcome and answer that.
            await self._orders.wait_paid_attempt(order, PAYING_LOCK_MS / 1000)
            fresh = await self._orders.get(order.room, order.id)
            return _held(fresh) or await self._gateway.retrieve(fresh.payment_ref or ""), []
        try:
            order = await self._orders.get(order.room, order.id)
            if order.status is not OrderStatus.PENDING:
                raise Conflict(f"order {order.id} is {order.status.wire}")
            current = _held(order) or await self._gateway.retrieve(order.payment_ref or "")
            if needs_new_intent(order, current):
                intent = await self._another_card(order, current, payment_method)
            elif payment_method:
                card = None if created_with_card else payment_method
                intent = await self._gateway.confirm(current.id, card)
            else:
                return current, []
            logger.info("room %s: order %s payment is %s", order.room, order.id, intent.status)
            order = await self._orders.get(order.room, order.id)
            return intent, await self._settlement.apply(order, intent, now)
        finally:
            await self._orders.done_paying(order)

    async def _intent_of(
        self, order: Order, payment_method: str | None, now: float
    ) -> tuple[Intent, bool]:
        """(the order's current intent, whether it was created with the card now)."""
        held = _held(order)
        if held is not None:
            return held, False
        token = secrets.token_hex(8)
        deadline = now + CLAIM_WAIT_S
        while True:
            state, ref = await self._orders.claim_intent(order, token, now)
            if state == "has":
                fresh = await self._orders.get(order.room, order.id)
                found = _held(fresh)
                if found is None:  # a wave 1 order: asked once, then held
                    found = await self._gateway.retrieve(ref)
                    await self._orders.note_status(fresh, found)
                return found, False
            if state == "claimed":
                intent = await self._create_intent(order, token, payment_method)
                if intent is not None:
                    return intent, True
                continue  # our claim was taken over: the order's intent is theirs
            await asyncio.sleep(0.05)  # another request is creating it right now
            now += 0.05
            if now > deadline:
                raise Unavailable("the payment is being prepared; try again")

    async def _another_card(
        self, order: Order, declined: Intent, payment_method: str | None
    ) -> Intent:
        """After a decline the order stays open for another card: a fresh intent
        takes the declined one's place (swapped in one script, only from the
        intent seen declined) and is confirmed. Reports about the declined one,
        early or late, no longer move the order; should it succeed anyway
        (confirmed elsewhere with its client secret), it is refunded."""
        fresh = await self._gateway.create_intent(
            order.total,
            order.currency,
            marker(order.id, order.room, order.identity),
            idempotency_key(order.id, order.total, order.currency, payment_method, len(order.refs)),
            payment_method,
            await self.customers.customer_of(order.identity, order.email),
        )
        if not await self._orders.replace_intent(order, declined.id, fresh):
            await self._gateway.cancel(fresh.id)
            raise Conflict(f"order {order.id} changed while paying; look at it again")
        if not needs_new_intent(order, declined):
            await self._gateway.cancel(declined.id)
        logger.info("room %s: order %s pays again with intent %s", order.room, order.id, fresh.id)
        return await self._gateway.confirm(fresh.id) if payment_method else fresh

    async def _create_intent(
        self, order: Order, token: str, payment_method: str | None
    ) -> Intent | None:
        """The order's first intent, or None if our claim was taken over meanwhile."""
        try:
            intent = await self._gateway.create_intent(
                order.total,
                order.currency,
                marker(order.id, order.room, order.identity),
                idempotency_key(
                    order.id, order.total, order.currency, payment_method, len(order.refs)
                ),
                payment_method,
                await self.customers.customer_of(order.identity, order.email),
            )
        except BaseException:
            await self._orders.release_claim(order)
            raise
        if not await self._orders.set_intent(order, token, intent):
            logger.warning(
                "room %s: order %s: claim taken over; %s unused", order.room, order.id, intent.id
            )
            return None
        logger.info("room %s: order %s has intent %s", order.room, order.id, intent.id)
        return intent


def _held(order: Order) -> Intent | None:
    """The order's current intent as we last saw it (no Stripe call)."""
    if not order.payment_ref or not order.intent_status:
        return None
    try:
        status = IntentStatus(order.intent_status)
    except ValueError:
        return None
    if order.payment_ref in order.declined:
        status = IntentStatus.REQUIRES_PAYMENT_METHOD  # cancelled by us: another card

    return Intent(
        id=order.payment_ref,
        status=status,
        amount=order.total,
        currency=order.currency,
        client_secret=order.client_secret,
        metadata=marker(order.id, order.room, order.identity),
    )
