"""Buy slots: a moderator pins a product into a numbered slot of the room;
listeners see it with its price and the stock left, and see it go when it
is unpinned. Owns the slot value and its script (with its log entry). A
pinned product gets the room's share of its stock (commerce.shares); units
of a product no slot of the room shows any more go back to its pool. Must
not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.catalog import Catalog, Product, check_shown_by
from commerce.events import SLOT_UPDATED
from commerce.shares import Shares
from kernel import validate
from kernel.errors import NotFound
from kernel.events import Event, to_room
from kernel.lua import Scripts
from kernel.owners import ADMIN_OWNER

logger = logging.getLogger(__name__)

MAX_SLOT = 12


@dataclass(frozen=True, slots=True)
class Slot:
    slot: int
    product: Product | None
    note: str
    remaining: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "product": self.product.as_dict(self.remaining) if self.product else None,
            "note": self.note,
            "remaining": self.remaining,
        }


def parse_slot(p: Mapping[str, Any]) -> int:
    return validate.integer(p, "slot", lo=1, hi=MAX_SLOT)


class Slots:
    def __init__(self, redis: aioredis.Redis, catalog: Catalog) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._catalog = catalog
        self._shares = Shares(redis, catalog)
        self._scripts = Scripts(redis)

    def _keys(self, room: str) -> list[str]:
        return [keys.slots(room), keys.log(room), keys.log_head(room)]

    async def pin(
        self,
        room: str,
        slot: int,
        product_id: str,
        note: str,
        now: float,
        room_owner: str = ADMIN_OWNER,
    ) -> tuple[Slot, list[Event]]:
        """Show the product in the slot; `Forbidden` for another owner's
        product in a creator's room (commerce.catalog.check_shown_by)."""
        product, _ = await self._catalog.get(product_id)
        check_shown_by(product, room_owner)
        await self._shares.ensure(room, product)
        await self._catalog.note_shown(product.id, room)
        value = json.dumps({"product_id": product.id, "note": note})
        await self._scripts.run("commerce/slot_set", self._keys(room), [slot, value, repr(now)])
        logger.info("room %s: slot %s shows %s", room, slot, product.id)
        pinned = Slot(slot, product, note, await self._remaining(room, product))
        return pinned, [to_room(room, SLOT_UPDATED, {"slot": pinned.as_dict()})]

    async def unpin(self, room: str, slot: int, now: float) -> list[Event]:
        raw = await self._redis.hget(keys.slots(room), slot)
        if not await self._scripts.run(
            "commerce/slot_set", self._keys(room), [slot, "", repr(now)]
        ):
            raise NotFound(f"slot {slot} is empty")
        logger.info("room %s: slot %s emptied", room, slot)
        if raw is not None:
            await self.give_back_unshown(room, {json.loads(raw)["product_id"]}, now)
        return [to_room(room, SLOT_UPDATED, {"slot": Slot(slot, None, "", None).as_dict()})]

    async def give_back_unshown(self, room: str, product_ids: set[str], now: float) -> None:
        """Units of products no slot of the room shows go back to their pools."""
        shown = {json.loads(v)["product_id"] for v in await self._redis.hvals(keys.slots(room))}
        for product_id in sorted(product_ids - shown):
            await self._shares.give_back(room, product_id, now)

    async def _remaining(self, room: str, product: Product) -> int | None:
        if product.stock is None:
            return None
        return await self._shares.available(room, product.id)

    async def in_room(self, room: str) -> list[Slot]:
        raw = await self._redis.hgetall(keys.slots(room))
        slots = []
        for number, value in sorted(raw.items(), key=lambda kv: int(kv[0])):
            d = json.loads(value)
            product = await self._catalog.product(d["product_id"])
            remaining = await self._remaining(room, product) if product else None
            slots.append(Slot(int(number), product, d["note"], remaining))
        return slots

    async def showing(self, room: str, product_ids: set[str], now: float) -> list[Event]:
        """`slot:updated` for the slots showing these products (their stock
        moved); the units of those no slot shows go back to their pools."""
        await self.give_back_unshown(room, product_ids, now)
        return [
            to_room(room, SLOT_UPDATED, {"slot": s.as_dict()})
            for s in await self.in_room(room)
            if s.product is not None and s.product.id in product_ids
        ]
