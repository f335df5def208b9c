"""A buyer's orders across rooms (`GET /me/orders`): the rooms of the
buyer's index (commerce.buyers), each room's order index of the buyer,
newest first. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

from commerce.buyers import BuyerIndex
from commerce.order_store import OrderStore
from commerce.orders import Order

MAX_PER_ROOM = 100


async def orders_of(orders: OrderStore, identity: str, limit: int = MAX_PER_ROOM) -> list[Order]:
    found: list[Order] = []
    for room in await BuyerIndex(orders._redis).rooms_of(identity):
        found += await orders.recent_of(room, identity, limit=limit)
    return sorted(found, key=lambda o: (o.created_at, o.id), reverse=True)
