"""Settlement: what a payment fact does to an order, whoever reports it (the
signed webhook, the reconciler, the hold sweeper).

Succeeded -> paid with a receipt (stock committed); failed -> failed (stock
released); a success for an order whose hold was lost -> refunded
automatically, the order saying why. Each change is an exactly-once script
(commerce.order_store), so reports may repeat or arrive out of order. Must
not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import logging

from commerce import keys
from commerce.drop_store import DropStore, drop_event
from commerce.inventory import StockMove, Target
from commerce.order_store import OrderStore, Settled
from commerce.orders import Order, Reason, build_receipt
from commerce.slots import Slots
from commerce.stripe_gateway import Intent, StripeGateway
from kernel.errors import DomainError
from kernel.events import Event, to_identity, to_staff

logger = logging.getLogger(__name__)

REFUND_RETRY_AFTER_S = 60.0


class Settlement:
    def __init__(
        self,
        orders: OrderStore,
        drops: DropStore,
        gateway: StripeGateway,
        slots: Slots | None = None,
    ) -> None:
        self._orders = orders
        self._drops = drops
        self._gateway = gateway
        self._slots = slots

    async def order_of(self, intent: Intent) -> Order | None:
        room, order_id = intent.metadata.get("room"), intent.metadata.get("order_id")
        if not room or not order_id:
            return None
        order = await self._orders.find(room, order_id)
        if order is not None and order.payment_ref not in (None, intent.id):
            return None  # an intent that is not this order's settles nothing
        return order

    async def succeeded(self, order: Order, intent: Intent, now: float) -> list[Event]:
        if intent.amount != order.total or intent.currency != order.currency:
            logger.error(
                "room %s: order %s paid %s %s, expected %s %s",
                order.room,
                order.id,
                intent.amount,
                intent.currency,
                order.total,
                order.currency,
            )
            return []
        receipt = build_receipt(order, intent.id, now)
        done = await self._orders.settle(
            order,
            "paid",
            now,
            payment_ref=intent.id,
            reason=Reason.PAID_AFTER_HOLD_LOST,
            receipt=receipt,
        )
        if done.outcome == "paid":
            logger.info("room %s: order %s paid (%s)", order.room, order.id, intent.id)
            return await self._told(order)
        if done.outcome == "refund_due":
            logger.warning(
                "room %s: order %s paid after its hold was lost; refunding", order.room, order.id
            )
            return await self._told(order) + await self.refund(order.room, order.id, now)
        return []

    async def failed(self, order: Order, reason: str, now: float) -> list[Event]:
        done = await self._orders.settle(order, "failed", now, reason=reason)
        return await self._released(order, done, now)

    async def expire_holds(self, room: str, now: float, *, cancel: bool = True) -> list[Event]:
        """Fail the room's pending orders whose hold ended; cancel their intents."""
        events: list[Event] = []
        for order_id in await self._orders.due(keys.orders_holds(room), now):
            order = await self._orders.find(room, order_id)
            if order is None:
                continue
            if cancel and order.payment_ref and await self._paid_in_time(order, now, events):
                continue
            done = await self._orders.settle(order, "expire", now, reason=Reason.HOLD_EXPIRED)
            events += await self._released(order, done, now)
            if done.outcome == "failed" and cancel and order.payment_ref:
                events += await self._cancel_or_settle(order, now)
        return events

    async def _paid_in_time(self, order: Order, now: float, events: list[Event]) -> bool:
        """Before a hold ends, ask Stripe: a payment that succeeded while the
        stock was still held (its webhook late or lost) makes the order paid."""
        try:
            intent = await self._gateway.retrieve(order.payment_ref or "")
        except DomainError as exc:
            logger.warning("room %s: order %s not checked: %s", order.room, order.id, exc)
            return False
        if intent.status != "succeeded":
            return False
        events += await self.succeeded(order, intent, now)
        return True

    async def _cancel_or_settle(self, order: Order, now: float) -> list[Event]:
        """Cancel the expired order's intent; one that cannot be cancelled may
        have taken the money: then it is refunded now, or asked about again by
        the reconciler (a lost webhook must not leave a buyer charged)."""
        ref = order.payment_ref or ""
        try:
            if await self._gateway.cancel(ref) is not None:
                return []
            intent = await self._gateway.retrieve(ref)
        except DomainError as exc:
            logger.warning("room %s: order %s cancel failed: %s", order.room, order.id, exc)
            await self._orders.watch(order, now)
            return []
        return await self.verify(order, intent, now)

    async def verify(self, order: Order, intent: Intent, now: float) -> list[Event]:
        """A failed order's intent as Stripe has it now: paid -> refund it."""
        if intent.status == "succeeded":
            await self._orders.unwatch(order.room, order.id)
            return await self.succeeded(order, intent, now)
        if intent.status in ("canceled", "requires_payment_method"):
            await self._orders.unwatch(order.room, order.id)
            return []
        await self._orders.watch(order, now)  # processing: ask again later
        return []

    async def refund(self, room: str, order_id: str, now: float) -> list[Event]:
        order = await self._orders.find(room, order_id)
        if order is None or not order.payment_ref:
            return []
        try:
            ref = await self._gateway.refund(order.payment_ref, f"refund-{order.id}")
        except DomainError as exc:
            logger.warning(
                "room %s: order %s refund failed (retried later): %s", room, order.id, exc
            )
            return []
        done = await self._orders.settle(order, "refunded", now, refund_ref=ref)
        if done.outcome != "refunded":
            return []
        logger.info("room %s: order %s refunded (%s)", room, order.id, ref)
        return await self._told(order)

    async def retry_refunds(self, room: str, now: float) -> list[Event]:
        events: list[Event] = []
        cutoff = now - REFUND_RETRY_AFTER_S
        for order_id in await self._orders.due(keys.orders_refund_due(room), cutoff):
            if await self._orders.claim_refund(room, order_id, now, cutoff):
                events += await self.refund(room, order_id, now)
        return events

    async def _released(self, order: Order, done: Settled, now: float) -> list[Event]:
        if done.outcome != "failed":
            return []
        logger.info("room %s: order %s failed, stock released", order.room, order.id)
        return await self._told(order) + await self._drop_events(order.room, done.moves, now)

    async def _drop_events(
        self, room: str, moves: tuple[StockMove, ...], now: float
    ) -> list[Event]:
        events = []
        products: set[str] = set()
        for move in moves:
            target = Target.from_line_id(room, move.line_id)
            if target is not None and target.drop_id:
                events.append(drop_event(await self._drops.get(room, target.drop_id), now))
            elif target is not None:
                products.add(target.product_id)
        if products and self._slots is not None:  # slots showing them: stock is back
            events += await self._slots.showing(room, products, now)
        return events

    async def _told(self, order: Order) -> list[Event]:
        """The buyer hears of their order; the room's staff see it in their
        order feed (the buyer's identity, never their payment details)."""
        fresh = await self._orders.get(order.room, order.id)
        payload = {"order": fresh.as_dict()}
        feed = {"order": {**fresh.as_dict(), "buyer": fresh.identity}}
        return [
            to_identity(order.room, order.identity, "order:updated", payload),
            to_staff(order.room, "order:feed", feed),
        ]
