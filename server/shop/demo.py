"""The shop's demo content: products, a pinned slot and a drop in the demo
room."""

from __future__ import annotations

from aiohttp import web

from commerce import catalog, drops
from server.appkeys import SCHEDULER
from server.rooms.demo import DEMO_ROOM
from server.shop.resources import SHOP


async def seed_demo(app: web.Application, room_was_created: bool) -> None:
    """Demo products, a pinned slot and a drop that goes live a minute from now."""
    if not room_was_created:
        return
    shop, now = app[SHOP], app[SCHEDULER].clock()
    samples = [
        {"id": "demo-hoodie", "title": "Tour hoodie", "price": 5500, "kind": "physical"},
        {"id": "demo-album", "title": "Live album (download)", "price": 900, "kind": "digital"},
        {"id": "demo-club", "title": "Fan club, 3 months", "price": 1500, "kind": "subscription"},
    ]
    for sample in samples:
        stock = {"stock": 100} if sample["kind"] == "physical" else {}
        product = catalog.parse_product({**sample, "currency": "eur", **stock})
        if await shop.catalog.find(product.id) is None:
            await shop.catalog.create(product)
    await shop.slots.pin(DEMO_ROOM, 1, "demo-hoodie", "Signed by the band", now)
    req = drops.DropRequest("demo-hoodie", now + 60, now + 3600, 50, 1)
    await shop.drops.schedule(DEMO_ROOM, req, now)
