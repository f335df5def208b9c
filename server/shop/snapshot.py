"""The shop's parts of `room:state`: slots, drops, the caller's cart,
recent orders and saved card, and the keys the page needs to pay."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.appkeys import SCHEDULER, SnapshotPart
from server.shop.resources import SHOP, stripe_js_url


def part(app: web.Application) -> SnapshotPart:
    async def part(room: str, identity: str) -> dict[str, Any]:
        shop, now = app[SHOP], app[SCHEDULER].clock()
        saved = await shop.checkout.customers.saved_card(identity)
        return {
            "slots": [s.as_dict() for s in await shop.slots.in_room(room)],
            "drops": [d.as_dict(now) for d in await shop.drops.in_room(room)],
            "cart": (await shop.carts.get(room, identity)).as_dict(),
            "orders": [
                await shop.order_dict(o, now) for o in await shop.orders.recent_of(room, identity)
            ],
            # The caller's saved card (signed-in buyers), for a one-click button.
            "saved_card": saved.as_dict() if saved else None,
            "shop": {
                "publishable_key": shop.gateway.publishable_key,
                "stripe_js_url": stripe_js_url(app),
            },
        }

    return part
