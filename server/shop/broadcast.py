"""The coalesced stock broadcast: drops and products whose stock moved are
announced at most once per flush (FLUSH_S), however many carts and orders
moved them meanwhile. Per process.

With one process (`dedupe`), a flush does not send a drop again when the
room already heard exactly that from this process (the state change a
`cart:add` announced the moment the drop sold out, then the flush of the
same stock: each is a frame to every listener of the room). With several
processes another one may have spoken since, so every flush is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    dedupe: bool = False
    # (room, drop id) -> the drop as this process last sent it (no server_time)
    sent: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

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
        events = []
        for room, drop_id in dirty_drops:
            event = drop_event(await shop.drops.get(room, drop_id), now)
            if not self.dedupe or self.sent.get((room, drop_id)) != _as_sent(event):
                events.append(event)
        for room, product_ids in dirty_products.items():
            events += await shop.slots.showing(room, product_ids, now)
        return events

    def note_sent(self, event: Event) -> None:
        """A `drop:updated` went out from this process (flushed or not)."""
        if self.dedupe and event.name == names.DROP_UPDATED:
            if len(self.sent) >= MAX_REMEMBERED:
                self.sent.clear()
            self.sent[(event.room, str(event.payload["drop"]["id"]))] = _as_sent(event)


MAX_REMEMBERED = 10_000  # drops whose last broadcast is remembered


def _as_sent(event: Event) -> dict[str, Any]:
    drop = dict(event.payload["drop"])
    drop.pop("server_time", None)
    return drop


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


def setup(app: web.Application) -> None:
    async def noted(event: Event) -> None:
        broadcast = app.get(BROADCAST)
        if broadcast is not None:
            broadcast.note_sent(event)

    app[EMITTER].listeners.append(noted)
