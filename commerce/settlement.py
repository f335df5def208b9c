"""Settlement: what a payment fact does to an order, whoever reports it (the
signed webhook, checkout, the reconciler, the hold sweeper, the buyer's
cancel). `commerce.payment.decide` says what it means; this module acts.

Succeeded -> paid with a receipt (stock committed); declined -> counted, the
order stays open for another card until its (shortened) hold ends or its
attempts run out; failed -> failed (stock released); a success for an order
whose hold was lost -> refunded automatically, the order saying why; a success
for another amount, or on an intent the order replaced -> that intent refunded,
once. Intents droproom did not create for an order it holds are never
touched. Each change is an exactly-once script (commerce.order_store), so
reports may repeat or arrive out of order. Must not import aiohttp, socketio
or stripe.
"""

from __future__ import annotations

import logging

from commerce import keys
from commerce.downloads import Downloads
from commerce.drop_store import DropStore, drop_event
from commerce.entitlements import Entitlements, encode
from commerce.events import ORDER_FEED, ORDER_UPDATED
from commerce.inventory import StockMove, Target
from commerce.order_store import OrderStore, Settled
from commerce.orders import Order, Reason, build_receipt
from commerce.payment import (
    DECLINE_HOLD_S,
    MAX_ATTEMPTS,
    Action,
    Decision,
    Intent,
    IntentStatus,
    claimed_order,
    decide,
)
from commerce.slots import Slots
from commerce.stripe_gateway import StripeGateway
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
        *,
        decline_hold_s: float = DECLINE_HOLD_S,
        max_attempts: int = MAX_ATTEMPTS,
        entitlements: Entitlements | None = None,
        downloads: Downloads | None = None,
    ) -> None:
        self._entitlements = entitlements
        self._downloads = downloads
        self._orders = orders
        self._drops = drops
        self._gateway = gateway
        self._slots = slots
        self._decline_hold_s = decline_hold_s
        self.max_attempts = max_attempts

    async def order_of(self, intent: Intent) -> Order | None:
        """The order an intent's metadata names, if we hold it (ownership is
        decided by `payment.decide`)."""
        claimed = claimed_order(intent)
        return await self._orders.find(*claimed) if claimed else None

    def decide(self, order: Order, intent: Intent | None, now: float) -> Decision:
        return decide(order, intent, now)

    async def apply(self, order: Order, intent: Intent | None, now: float) -> list[Event]:
        """Act on what `intent` (or no intent) means for `order` now."""
        return await self.act(order, intent, self.decide(order, intent, now), now)

    async def act(
        self, order: Order, intent: Intent | None, decision: Decision, now: float
    ) -> list[Event]:
        action, reason = decision.action, decision.reason or ""
        if intent is not None and action is not Action.IGNORE:
            await self._orders.note_status(order, intent)
        if action in (Action.IGNORE, Action.WAIT):
            return []
        if intent is not None and action is Action.PAY:
            return await self._pay(order, intent, now)
        if intent is not None and action is Action.DECLINE:
            return await self._declined(order, intent, now)
        if intent is not None and action in (Action.MISMATCH, Action.REFUND):
            return await self._refund_intent(order, intent, reason, now)
        cancel = intent is None or not intent.final
        return await self.fail(order, reason, now, cancel=cancel)

    async def succeeded(self, order: Order, intent: Intent, now: float) -> list[Event]:
        """Wave 1's entry point for a success report: now just `apply`."""
        return await self.apply(order, intent, now)

    async def failed(self, order: Order, reason: str, now: float) -> list[Event]:
        """Wave 1's entry point: fail a pending order (its intent left alone)."""
        return await self.fail(order, reason, now, cancel=False)

    async def _pay(self, order: Order, intent: Intent, now: float) -> list[Event]:
        since = self._downloads.clock() if self._downloads is not None else None
        receipt = build_receipt(order, intent.id, now)
        # The files bought are those of the product now; the script keeps them
        # only if this is the paid transition (exactly once).
        entitled = await self._entitlements.of(order) if self._entitlements else ()
        done = await self._orders.settle(
            order,
            "paid",
            now,
            payment_ref=intent.id,
            reason=Reason.PAID_AFTER_HOLD_LOST,
            receipt=receipt,
            entitlements=encode(entitled),
        )
        if done.outcome == "paid":
            logger.info("room %s: order %s paid (%s)", order.room, order.id, intent.id)
            told = await self._told(order, now, paid_since=since)
            return told + await self._drops_of(order, now)
        if done.outcome == "refund_due":
            logger.warning(
                "room %s: order %s paid after its hold was lost; refunding", order.room, order.id
            )
            return await self._told(order) + await self.refund(order.room, order.id, now)
        return []

    async def _declined(self, order: Order, intent: Intent, now: float) -> list[Event]:
        """A declined card: counted; the order stays open for another card
        (its hold shortened) unless that was its last attempt."""
        done = await self._orders.decline(
            order, intent, now, self._decline_hold_s, order.max_attempts
        )
        if done == "noop":
            return []
        await self._cancel_quietly(order, intent.id)
        if done == "exhausted":
            logger.info("room %s: order %s: no card attempts left", order.room, order.id)
            return await self.fail(order, Reason.DECLINED, now, cancel=False)
        logger.info("room %s: order %s declined (%s); open", order.room, order.id, intent.id)
        return await self._told(order)

    async def _cancel_quietly(self, order: Order, ref: str) -> None:
        try:
            await self._gateway.cancel(ref)
        except DomainError as exc:
            logger.warning(
                "room %s: order %s: %s not cancelled: %s", order.room, order.id, ref, exc
            )

    async def fail(
        self, order: Order, reason: str, now: float, *, cancel: bool = True
    ) -> list[Event]:
        """Fail a pending order (stock released); then cancel its intent."""
        action = "expire" if reason == Reason.HOLD_EXPIRED else "failed"
        done = await self._orders.settle(order, action, now, reason=reason)
        events = await self._released(order, done, now)
        if done.outcome == "failed" and cancel and order.payment_ref:
            events += await self._cancel_or_settle(order, now)
        return events

    async def _refund_intent(
        self, order: Order, intent: Intent, reason: str, now: float
    ) -> list[Event]:
        """An intent of ours took money the order cannot keep: fail the order if
        it was waiting on it (amount mismatch), and give that money back once."""
        logger.error(
            "room %s: order %s: %s paid %s %s (order %s %s): %s, refunding",
            order.room,
            order.id,
            intent.id,
            intent.amount,
            intent.currency,
            order.total,
            order.currency,
            reason,
        )
        await self._orders.owe_refund(order, intent.id, now)
        events: list[Event] = []
        if reason == Reason.AMOUNT_MISMATCH and intent.id == order.payment_ref:
            done = await self._orders.settle(order, "failed", now, reason=reason)
            events += await self._released(order, done, now)
        return events + await self._refund_owed(order.room, f"{order.id} {intent.id}", now)

    async def _refund_owed(self, room: str, member: str, now: float) -> list[Event]:
        order_id, ref = member.split()
        index = keys.refunds_due(room)
        if not await self._orders.claim_check(index, room, order_id, now, member=member):
            return []  # another process is on it, or it is not due yet
        try:
            refund_ref = await self._gateway.refund(ref, f"refund-{ref}")
        except DomainError as exc:
            logger.warning(
                "room %s: order %s: refund of %s retried later: %s", room, order_id, ref, exc
            )
            return []
        if not await self._orders.intent_refunded(room, order_id, ref, refund_ref, now):
            return []
        logger.info("room %s: order %s: %s refunded (%s)", room, order_id, ref, refund_ref)
        order = await self._orders.find(room, order_id)
        return await self._told(order) if order is not None else []

    async def expire_holds(self, room: str, now: float, *, cancel: bool = True) -> list[Event]:
        """Settle the room's pending orders whose hold ended: a payment that
        succeeded in time (its webhook late or lost) pays the order; anything
        else fails it and cancels its intent."""
        events: list[Event] = []
        for order_id in await self._orders.due(keys.orders_holds(room), now):
            order = await self._orders.find(room, order_id)
            if order is None:
                continue
            intent = await self._current(order) if cancel else None
            decision = self.decide(order, intent, now)
            if decision.action in (Action.IGNORE, Action.WAIT, Action.REFUND):
                intent, decision = None, self.decide(order, None, now)
            if decision.action is Action.FAIL and not cancel:
                events += await self.fail(order, decision.reason or "", now, cancel=False)
                continue
            events += await self.act(order, intent, decision, now)
        return events

    async def _current(self, order: Order) -> Intent | None:
        if not order.payment_ref:
            return None
        try:
            return await self._gateway.retrieve(order.payment_ref)
        except DomainError as exc:
            logger.warning("room %s: order %s not checked: %s", order.room, order.id, exc)
            return None

    async def _cancel_or_settle(self, order: Order, now: float) -> list[Event]:
        """Cancel the failed order's intent; one that cannot be cancelled may
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
        return await self.verify(await self._orders.get(order.room, order.id), intent, now)

    async def verify(self, order: Order, intent: Intent, now: float) -> list[Event]:
        """A failed order's intent as Stripe has it now: paid -> refund it."""
        if intent.status is IntentStatus.SUCCEEDED:
            await self._orders.unwatch(order.room, order.id)
            return await self.apply(order, intent, now)
        if intent.stopped:
            await self._orders.unwatch(order.room, order.id)
            return []
        await self._orders.watch(order, now)  # processing: asked again later (backoff)
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
        index = keys.orders_refund_due(room)
        for order_id in await self._orders.due(index, cutoff):
            # Not before REFUND_RETRY_AFTER_S (the first try is the webhook's),
            # then backing off per order.
            claimed = await self._orders.claim_check(
                index, room, order_id, now, offset=REFUND_RETRY_AFTER_S
            )
            if claimed:
                events += await self.refund(room, order_id, now)
        for member in await self._orders.due(keys.refunds_due(room), now):
            events += await self._refund_owed(room, member, now)
        return events

    async def _drops_of(self, order: Order, now: float) -> list[Event]:
        """The drops an order's stock moved in (their held and sold changed)."""
        drop_ids = {line.drop_id for line in order.lines if line.drop_id}
        return [drop_event(await self._drops.get(order.room, d), now) for d in sorted(drop_ids)]

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

    async def _told(
        self, order: Order, now: float | None = None, *, paid_since: float | None = None
    ) -> list[Event]:
        """The buyer hears of their order (a paid one with fresh download
        links); the room's staff see it in their order feed (the buyer's
        identity, never their payment details nor their links)."""
        fresh = await self._orders.get(order.room, order.id)
        mine = fresh.as_dict()
        if self._downloads is not None and now is not None:
            mine = await self._downloads.order_dict(fresh, now, paid_since=paid_since)
        payload = {"order": mine}
        feed = {"order": fresh.feed_dict()}
        return [
            to_identity(order.room, order.identity, ORDER_UPDATED, payload),
            to_staff(order.room, ORDER_FEED, feed),
        ]
