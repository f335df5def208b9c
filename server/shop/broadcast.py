"""The coalesced stock broadcast: drops and products whose stock moved are
announced at most once per flush (FLUSH_S), however many carts and orders
moved them meanwhile. Per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from commerce import events as names
from commerce.carts import CartChange
from commerce.drop_store import drop_event
from commerce.inventory import Target
from commerce.shop import Shop
from kernel.events import Event
from server.appkeys import EMITTER

FLUSH_S = 0.25  # stock counts are broadcast at most this often per drop


@dataclass
class StockBroadcast:
    """Drops and products whose stock moved since the last flush (per process)."""

    drops: set[tuple[str, str]] = field(default_factory=set)
    products: dict[str, set[str]] = field(default_factory=dict)

    def touch(self, room: str, changes: list[CartChange]) -> None:
        for change in changes:
            for move in change.moves:
                target = Target.from_line_id(room, move.line_id)
                if target is None or move.left < 0:
                    continue
                if target.drop_id:
                    self.drops.add((room, target.drop_id))
                else:
                    self.products.setdefault(room, set()).add(target.product_id)

    async def flush(self, shop: Shop, now: float) -> list[Event]:
        dirty_drops, self.drops = self.drops, set()
        dirty_products, self.products = self.products, {}
        events = [drop_event(await shop.drops.get(r, d), now) for r, d in dirty_drops]
        for room, product_ids in dirty_products.items():
            events += await shop.slots.showing(room, product_ids, now)
        return events


BROADCAST: web.AppKey[StockBroadcast] = web.AppKey("shop_broadcast", StockBroadcast)


async def emit_coalesced(app: web.Application, events: list[Event]) -> None:
    """Emit what the money path returned, folding its `drop:updated` into the
    coalesced stock broadcast (a drop sees at most one per FLUSH_S, however
    many orders are paid or released meanwhile)."""
    rest: list[Event] = []
    for event in events:
        if event.name == names.DROP_UPDATED:
            app[BROADCAST].drops.add((event.room, str(event.payload["drop"]["id"])))
        else:
            rest.append(event)
    await app[EMITTER].emit(rest)
