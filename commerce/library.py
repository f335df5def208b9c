"""A buyer's library: every file they bought, across rooms, with fresh links.

Walks the buyer's rooms (commerce.buyers), each room's library index (orders
holding files, added at the paid transition and removed at a refund), and
answers each paid order's entitlements with links minted now
(commerce.downloads). A refunded order answers nothing, whatever the index
says. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

from typing import Any

from commerce import keys
from commerce.buyers import BuyerIndex
from commerce.catalog import Catalog
from commerce.downloads import Downloads
from commerce.order_store import OrderStore
from commerce.orders import Order, OrderStatus


class Library:
    def __init__(self, redis: Any, downloads: Downloads) -> None:
        self._redis: Any = redis
        self._downloads = downloads
        self._buyers = BuyerIndex(redis)
        self._catalog = Catalog(redis)
        self._orders = OrderStore(redis)

    async def items(self, identity: str, now: float) -> list[dict[str, Any]]:
        """One item per product bought, newest first."""
        found: list[dict[str, Any]] = []
        for room in await self._buyers.rooms_of(identity):
            for raw in await self._redis.zrevrange(keys.buyer_library(room, identity), 0, -1):
                order = await self._orders.find(room, raw.decode())
                if order is not None and order.status is OrderStatus.PAID:
                    found += await self._items_of(order, now)
        found.sort(key=lambda item: item["granted_at"], reverse=True)
        return found

    async def _items_of(self, order: Order, now: float) -> list[dict[str, Any]]:
        entitled = await self._downloads.entitlements_of(order)
        links = await self._downloads.links(order, now, entitled)
        granted_at = (order.receipt or {}).get("paid_at", order.created_at)
        items = []
        for ent in entitled:
            product = await self._catalog.product(ent.product_id)
            items.append(
                {
                    "product": product.as_dict()
                    if product
                    else {"id": ent.product_id, "title": ent.title},
                    "title": ent.title,
                    "order_id": order.id,
                    "room": order.room,
                    "granted_at": granted_at,
                    "downloads": [d for d in links if d["product_id"] == ent.product_id],
                }
            )
        return items
