"""Which domain events become webhooks, and for whom: it listens to what the
emitter sends (server.emitter `listeners`), so the code that decides a sale,
a drop or a room's live state stays as it is.

- `order:updated` / `order:feed` with status paid or refunded: `order.paid`,
  `order.refunded`; data: the order as stored (its lines, total, currency,
  the buyer's identity, email and shipping address: the owner sells and
  ships, and the owner's order export shows the same), plus `room`. Never
  card data (we never hold any), never download links.
- `drop:updated` in state live or sold_out: `drop.live`, `drop.sold_out`
  (once per drop); data: the drop, plus `room`.
- `room:updated`: `room.live` when the room goes live, `room.ended` when it
  stops (once per live session); data: the room. Its live state is
  followed whether or not anyone listens yet, so an endpoint registered
  during a live session still hears it end.

Events go to the endpoints of the room's owner (the admin's rooms to the
endpoints the admin registered). Each is enqueued once however often it is
emitted (accounts.hook_queue); a small memory of the orders and drops
already seen spares Redis the repeats (a live drop is announced at every
stock move): an order or drop event is about a moment, so an endpoint
registered after it does not get it.
"""

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from accounts import hooks
from commerce.events import DROP_UPDATED, ORDER_FEED, ORDER_UPDATED
from kernel.events import Event
from rooms.events import ROOM_UPDATED
from server.appkeys import EMITTER, ROOMS, SCHEDULER
from server.hooks.resources import HOOK_QUEUE, HOOKS
from server.shop.resources import SHOP

logger = logging.getLogger(__name__)

ORDER_TYPES = {"paid": hooks.ORDER_PAID, "refunded": hooks.ORDER_REFUNDED}
DROP_TYPES = {"live": hooks.DROP_LIVE, "sold_out": hooks.DROP_SOLD_OUT}
REMEMBER = 4096  # refs already enqueued, per process


@dataclass(frozen=True, slots=True)
class Found:
    """A domain event that is a webhook: its type, what it is about, its
    data (read only when someone wants it) and, for a room, its live state."""

    type: str
    ref: str
    data: Callable[[], Awaitable[dict[str, Any]]]
    live: bool | None = None


def _order(app: web.Application, event: Event) -> Found | None:
    order = event.payload.get("order")
    if not isinstance(order, dict) or not order.get("id"):
        return None
    event_type = ORDER_TYPES.get(str(order.get("status")))
    if event_type is None:
        return None
    order_id = str(order["id"])

    async def data() -> dict[str, Any]:
        stored = await app[SHOP].orders.get(event.room, order_id)
        return stored.as_dict() | {"room": event.room, "buyer": stored.identity}

    return Found(event_type, f"{event.room}:{order_id}", data)


def _drop(app: web.Application, event: Event) -> Found | None:
    drop = event.payload.get("drop")
    if not isinstance(drop, dict) or not drop.get("id"):
        return None
    event_type = DROP_TYPES.get(str(drop.get("state")))
    if event_type is None:
        return None

    async def data() -> dict[str, Any]:
        return {k: v for k, v in drop.items() if k != "server_time"} | {"room": event.room}

    return Found(event_type, f"{event.room}:{drop['id']}", data)


def _room(app: web.Application, event: Event) -> Found | None:
    room = event.payload.get("room")
    if not isinstance(room, dict):
        return None
    live = bool(room.get("live"))

    async def data() -> dict[str, Any]:
        return dict(room)

    return Found(hooks.ROOM_LIVE if live else hooks.ROOM_ENDED, event.room, data, live)


SOURCES: dict[str, Callable[[web.Application, Event], Found | None]] = {
    ORDER_UPDATED: _order,
    ORDER_FEED: _order,
    DROP_UPDATED: _drop,
    ROOM_UPDATED: _room,
}


class Sources:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._done: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def on_event(self, event: Event) -> None:
        source = SOURCES.get(event.name)
        found = source(self.app, event) if source else None
        if found is None or (found.type, found.ref) in self._done:
            return
        room = await self.app[ROOMS].get_room(event.room)
        if room is None:
            return
        wanting = await self.app[HOOKS].of(room.owner)
        if found.live is None:
            await self._once(found, [e for e in wanting if e.wants(found.type)])
            self._remember(found)  # it happened: an endpoint added later is too late for it
        else:  # rare, and the live state is followed even with nobody listening yet
            await self._room(event.room, found, [e for e in wanting if e.wants(found.type)])

    async def _once(self, found: Found, endpoints: list[hooks.Endpoint]) -> None:
        if not endpoints:
            return
        now = self.app[SCHEDULER].clock()
        body = hooks.message_body(found.type, now, await found.data())
        msg_id = await self.app[HOOK_QUEUE].enqueue_once(
            found.type, found.ref, body, endpoints, now
        )
        self._remember(found)
        if msg_id:
            logger.info(
                "webhook %s %s queued for %d endpoints", found.type, found.ref, len(endpoints)
            )

    async def _room(self, room: str, found: Found, endpoints: list[hooks.Endpoint]) -> None:
        now = self.app[SCHEDULER].clock()
        body = hooks.message_body(found.type, now, await found.data())
        queue = self.app[HOOK_QUEUE]
        if await queue.enqueue_room(room, bool(found.live), found.type, body, endpoints, now):
            logger.info(
                "room %s: webhook %s queued for %d endpoints", room, found.type, len(endpoints)
            )

    def _remember(self, found: Found) -> None:
        self._done[(found.type, found.ref)] = None
        while len(self._done) > REMEMBER:
            self._done.popitem(last=False)


def setup(app: web.Application) -> None:
    sources = Sources(app)
    app[EMITTER].listeners.append(sources.on_event)
