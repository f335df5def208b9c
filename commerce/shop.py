"""The shop assembled: one object holding the catalog, drops, slots, carts,
orders, checkout, settlement, webhooks and reconciler over one Redis client
and one Stripe gateway. `server/` builds it once per app and closes the
gateway at cleanup. Its settings are commerce.config.ShopConfig. Frameworks
(aiohttp, socketio) and the stripe SDK stay out of it.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from commerce.carts import Carts
from commerce.catalog import Catalog
from commerce.checkout import Checkout
from commerce.claims import Claims
from commerce.config import ShopConfig
from commerce.downloads import Downloads
from commerce.drop_store import DropStore
from commerce.entitlements import Entitlements
from commerce.one_click import BuyNow
from commerce.order_store import OrderStore
from commerce.orders import Order
from commerce.product_edit import ProductEditor
from commerce.reconciler import Reconciler
from commerce.settlement import Settlement
from commerce.shares import Shares
from commerce.slots import Slots
from commerce.stripe_gateway import StripeGateway
from commerce.webhooks import Webhooks


class Shop:
    def __init__(
        self,
        redis: aioredis.Redis,
        gateway: StripeGateway,
        config: ShopConfig,
        downloads: Downloads | None = None,
    ) -> None:
        self.config = config
        self.downloads = downloads
        self.gateway = gateway
        self.catalog = Catalog(redis)
        self.editor = ProductEditor(redis, self.catalog)
        self.drops = DropStore(redis, self.catalog)
        self.slots = Slots(redis, self.catalog)
        self.shares = Shares(redis, self.catalog)
        self.carts = Carts(redis, self.drops, config.cart_ttl_s)
        self.sold_out = self.carts.sold_out  # drops known sold out for good (per process)
        self.orders = OrderStore(redis)
        self.settlement = Settlement(
            self.orders,
            self.drops,
            gateway,
            self.slots,
            decline_hold_s=config.decline_hold_s,
            max_attempts=config.max_attempts,
            entitlements=Entitlements(self.catalog),
            downloads=downloads,
        )
        self.checkout = Checkout(
            self.carts, self.catalog, self.orders, gateway, self.settlement, config.checkout_hold_s
        )
        self.buy_now = BuyNow(
            redis,
            self.catalog,
            self.drops,
            self.orders,
            self.checkout,
            config.checkout_hold_s,
            config.max_attempts,
        )
        self.claims = Claims(redis)
        self.webhooks = Webhooks(redis, gateway, self.settlement)
        self.reconciler = Reconciler(
            redis, self.orders, gateway, self.settlement, config.reconcile_after_s
        )

    async def order_dict(self, order: Order, now: float) -> dict[str, Any]:
        """An order as its buyer sees it: a paid one with fresh download links."""
        if self.downloads is None:
            return order.as_dict()
        return await self.downloads.order_dict(order, now)
