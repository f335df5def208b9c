"""Stripe webhooks: verify, deduplicate by event id, dispatch by type.

The signature is checked before anything else (`Invalid` -> 400, nothing
changed). Each event id is handled once (a marker with a TTL, removed again
if handling fails so Stripe's retry gets another chance); each order moves
once whatever the event order (commerce.settlement). Unknown types are
acknowledged and ignored. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.orders import Reason
from commerce.settlement import Settlement
from commerce.stripe_gateway import PaymentEvent, StripeGateway
from kernel.events import Event

logger = logging.getLogger(__name__)

# A failure report about an intent that is now in one of these states is
# stale: the buyer is paying again (another card, or 3-D Secure) meanwhile.
RETRY_UNDER_WAY = frozenset({"processing", "requires_action", "requires_confirmation"})

Handler = Callable[[PaymentEvent, float], Awaitable[list[Event]]]


class Webhooks:
    def __init__(
        self, redis: aioredis.Redis, gateway: StripeGateway, settlement: Settlement
    ) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._gateway = gateway
        self._settlement = settlement
        self._table: dict[str, Handler] = {
            "payment_intent.succeeded": self._succeeded,
            "payment_intent.payment_failed": self._failed,
            "payment_intent.canceled": self._failed,
        }

    async def handle(self, payload: bytes, signature: str, now: float) -> list[Event]:
        event = self._gateway.parse_event(payload, signature)
        handler = self._table.get(event.type)
        if handler is None:
            return []
        seen = keys.webhook_seen(event.id)
        if not await self._redis.set(seen, "1", nx=True, ex=keys.WEBHOOK_SEEN_TTL_S):
            logger.info("webhook %s (%s) already handled", event.id, event.type)
            return []
        try:
            return await handler(event, now)
        except BaseException:
            await self._redis.delete(seen)
            raise

    async def _succeeded(self, event: PaymentEvent, now: float) -> list[Event]:
        intent = event.intent()
        order = await self._settlement.order_of(intent) if intent else None
        if intent is not None and order is None and intent.metadata.get("order_id"):
            # Money taken on an intent its order replaced (another card after a
            # decline): nothing was sold for it, so it goes back.
            logger.warning("webhook %s: %s paid a replaced intent; refunding", event.id, intent.id)
            await self._gateway.refund(intent.id, f"refund-{intent.id}")
            return []
        if intent is None or order is None:
            logger.warning("webhook %s: no order for this payment", event.id)
            return []
        return await self._settlement.succeeded(order, intent, now)

    async def _failed(self, event: PaymentEvent, now: float) -> list[Event]:
        reported = event.intent()
        order = await self._settlement.order_of(reported) if reported else None
        if reported is None or order is None:
            logger.warning("webhook %s: no order for this payment", event.id)
            return []
        # Events may arrive out of order: act on where the payment stands now.
        intent = await self._gateway.retrieve(reported.id)
        if intent.status == "succeeded":
            return await self._settlement.succeeded(order, intent, now)
        if intent.status in RETRY_UNDER_WAY:
            logger.info("webhook %s: order %s is being paid again; not failed", event.id, order.id)
            return []
        reason = Reason.CANCELED if intent.status == "canceled" else Reason.DECLINED
        return await self._settlement.failed(order, reason, now)
