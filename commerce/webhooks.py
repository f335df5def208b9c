"""Stripe webhooks: verify, deduplicate by event id, dispatch by type.

The signature is checked before anything else (`Invalid` -> 400, nothing
changed). Each event id is handled once (a marker with a TTL, removed again
if handling fails so Stripe's retry gets another chance); each order moves
once whatever the event order (commerce.settlement). Unknown types are
acknowledged and ignored; so is an event about an intent droproom did not
create for an order it holds (`payment.is_ours`): the Stripe account may
serve other shops. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.orders import Order
from commerce.payment import Intent, is_ours
from commerce.settlement import Settlement
from commerce.stripe_gateway import StripeGateway
from kernel.errors import Invalid
from kernel.events import Event

logger = logging.getLogger(__name__)

Handler = Callable[[Intent, str, float], Awaitable[list[Event]]]


class Webhooks:
    def __init__(
        self, redis: aioredis.Redis, gateway: StripeGateway, settlement: Settlement
    ) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._gateway = gateway
        self._settlement = settlement
        self._table: dict[str, Handler] = {
            "payment_intent.succeeded": self._as_reported,
            "payment_intent.payment_failed": self._as_it_stands,
            "payment_intent.canceled": self._as_it_stands,
        }

    async def handle(self, payload: bytes, signature: str, now: float) -> list[Event]:
        """Act on one signed event. `Invalid` (400) for a bad signature or a
        malformed event of a type we handle: nothing changes."""
        event = self._gateway.parse_event(payload, signature, now)
        handler = self._table.get(event.type)
        if handler is None:
            return []
        try:
            intent = event.intent()
        except Invalid as exc:
            # Signed by Stripe yet unreadable: refused (400), said once per event.
            bad = keys.webhook_bad(event.id)
            if await self._redis.set(bad, "1", nx=True, ex=keys.WEBHOOK_SEEN_TTL_S):
                logger.warning("webhook %s (%s) refused: %s", event.id, event.type, exc.message)
            raise
        if intent is None:
            return []
        seen = keys.webhook_seen(event.id)
        if not await self._redis.set(seen, "1", nx=True, ex=keys.WEBHOOK_SEEN_TTL_S):
            logger.info("webhook %s (%s) already handled", event.id, event.type)
            return []
        try:
            return await handler(intent, event.id, now)
        except BaseException:
            await self._redis.delete(seen)
            raise

    async def _order(self, intent: Intent, event_id: str) -> Order | None:
        order = await self._settlement.order_of(intent)
        if order is None or not is_ours(order, intent):
            # The account may serve other shops (or a staging copy): not ours,
            # so nothing changes and nothing is refunded.
            logger.info("webhook %s: %s is not an intent of an order we hold", event_id, intent.id)
            return None
        return order

    async def _as_reported(self, intent: Intent, event_id: str, now: float) -> list[Event]:
        order = await self._order(intent, event_id)
        return await self._settlement.apply(order, intent, now) if order else []

    async def _as_it_stands(self, reported: Intent, event_id: str, now: float) -> list[Event]:
        """Failure reports may arrive out of order: act on where the payment
        stands now (a success, another card under way, a decline)."""
        order = await self._order(reported, event_id)
        if order is None:
            return []
        intent = await self._gateway.retrieve(reported.id)
        return await self._settlement.apply(order, intent, now)
