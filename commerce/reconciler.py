"""The reconciler: asks Stripe about pending orders older than a few
minutes, so a missed webhook never loses a paid order, and retries refunds
that did not go through. Run at start-up and periodically by `server/`.

Idempotent across processes: every change goes through the same
exactly-once scripts as the webhook. Must not import aiohttp, socketio or
stripe.

Every scheduled question to Stripe about an order backs off per order (the
claim in commerce.order_index pushes its next time back exponentially), so a
stuck order is not asked about every run, also across restarts.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.order_store import OrderStore
from commerce.orders import OrderStatus
from commerce.payment import Action
from commerce.settlement import Settlement
from commerce.stripe_gateway import StripeGateway
from kernel.errors import DomainError
from kernel.events import Event

logger = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        redis: aioredis.Redis,
        orders: OrderStore,
        gateway: StripeGateway,
        settlement: Settlement,
        after_s: float,
    ) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._orders = orders
        self._gateway = gateway
        self._settlement = settlement
        self._after_s = after_s

    async def run(self, now: float) -> list[Event]:
        events: list[Event] = []
        for raw in await self._redis.smembers(keys.SHOP_ROOMS):
            room = raw.decode()
            events += await self.room(room, now)
            events += await self._settlement.retry_refunds(room, now)
            events += await self.verify_failed(room, now)
        return events

    async def room(self, room: str, now: float) -> list[Event]:
        """Pending orders older than `after_s`, each asked about with its own
        backoff (the claim pushes its next check back)."""
        events: list[Event] = []
        index = keys.orders_created(room)
        for order_id in await self._orders.due(index, now - self._after_s):
            if not await self._orders.claim_check(index, room, order_id, now, offset=self._after_s):
                continue
            try:
                events += await self._check(room, order_id, now)
            except DomainError as exc:
                logger.warning("room %s: order %s not reconciled: %s", room, order_id, exc)
        return events

    async def verify_failed(self, room: str, now: float) -> list[Event]:
        """Failed orders whose intent could not be cancelled: paid after all?"""
        events: list[Event] = []
        index = keys.orders_verify(room)
        for order_id in await self._orders.due(index, now):
            order = await self._orders.find(room, order_id)
            if order is None or not order.payment_ref:
                await self._orders.unwatch(room, order_id)
                continue
            if not await self._orders.claim_check(index, room, order_id, now):
                continue
            try:
                intent = await self._gateway.retrieve(order.payment_ref)
                events += await self._settlement.verify(order, intent, now)
            except DomainError as exc:
                logger.warning("room %s: order %s not verified: %s", room, order_id, exc)
        return events

    async def _check(self, room: str, order_id: str, now: float) -> list[Event]:
        order = await self._orders.find(room, order_id)
        if order is None or order.status is not OrderStatus.PENDING or not order.payment_ref:
            return []  # no intent yet: the hold's end settles it
        intent = await self._gateway.retrieve(order.payment_ref)
        decision = self._settlement.decide(order, intent, now)
        if decision.action is Action.PAY:
            logger.info("room %s: order %s paid (found by the reconciler)", room, order_id)
        return await self._settlement.act(order, intent, decision, now)
