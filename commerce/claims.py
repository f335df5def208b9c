"""Claims: a guest who signs in takes what their guest identity bought.

Holding an unexpired guest token is the proof (checked by `server/`); a
guest identity is claimed once (`{buyer:<guest>}:claim`, set before any
room changes). Then, one script per room the guest ordered in
(commerce/lua/claim_room.lua): the orders, the pending pointer, the
library, and the per-buyer counters merged so a limit is never doubled.
The account's buyer index notes the rooms. Must not import aiohttp,
socketio or stripe.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from commerce import keys
from commerce.buyers import BuyerIndex, is_account, is_guest
from commerce.inventory import Target
from kernel.errors import Conflict, Invalid
from kernel.lua import Scripts

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    guest: str
    account: str
    rooms: tuple[str, ...]
    orders: int

    def as_dict(self) -> dict[str, Any]:
        return {"guest": self.guest, "rooms": list(self.rooms), "orders": self.orders}


class Claims:
    def __init__(self, redis: Any) -> None:
        self._redis: Any = redis
        self._scripts = Scripts(redis)
        self._buyers = BuyerIndex(redis)

    async def claim(self, guest: str, account: str) -> Claimed:
        if not is_guest(guest):
            raise Invalid("guest_token must be a guest's token (identity guest-...)")
        if not is_account(account):
            raise Invalid("only an account may claim a guest's orders")
        if not await self._redis.set(keys.buyer_claim(guest), account, nx=True):
            raise Conflict("this guest's orders were claimed already")
        rooms = await self._buyers.rooms_of(guest)
        moved = 0
        for room in rooms:
            await self._buyers.note(account, room)
            moved += await self._claim_room(room, guest, account)
        logger.info("account %s claimed %s: %d orders in %d rooms", account, guest, moved,
                    len(rooms))  # fmt: skip
        return Claimed(guest, account, tuple(rooms), moved)

    async def _claim_room(self, room: str, guest: str, account: str) -> int:
        raw_ids = await self._redis.zrange(keys.buyer_orders(room, guest), 0, -1)
        order_ids = [i.decode() for i in raw_ids]
        targets = await self._targets(room, guest, order_ids)
        script_keys = [keys.buyer_orders(room, guest), keys.buyer_orders(room, account)]
        script_keys += [keys.buyer_pending(room, guest), keys.buyer_pending(room, account)]
        script_keys += [keys.cart(room, guest), keys.buyer_library(room, guest)]
        script_keys += [keys.buyer_library(room, account)]
        script_keys += [keys.order(room, order_id) for order_id in order_ids]
        script_keys += [t.buyers_key for t in targets]
        args = [guest, account, len(order_ids), *(t.line_id for t in targets)]
        res = await self._scripts.run("commerce/claim_room", script_keys, args)
        logger.info("room %s: %s -> %s: %s orders, %s units counted", room, guest, account,
                    res[0], res[1])  # fmt: skip
        return int(res[0])

    async def _targets(self, room: str, guest: str, order_ids: list[str]) -> list[Target]:
        """Every stock the guest may have a per-buyer count in: the room's
        drops, and the products of the guest's orders."""
        drop_ids = [d.decode() for d in await self._redis.zrange(keys.drops(room), 0, -1)]
        targets = {Target(room, "", d) for d in drop_ids}
        for order_id in order_ids:
            raw = await self._redis.hget(keys.order(room, order_id), "lines")
            for line in _lines(raw):
                if not line.get("drop_id"):
                    targets.add(Target(room, str(line["product_id"]), None))
        return sorted(targets, key=lambda t: t.line_id)


def _lines(raw: bytes | None) -> list[dict[str, Any]]:
    return list(json.loads(raw)) if raw else []
