"""Drops this process knows are sold out for good (until a restock): the
answer to a reservation of one, without a Redis round trip.

A drop is final when no unit is left and none is held (units held in carts
or awaiting payment may come back on expiry or a failed payment; sold units
never do), or when it has ended. Only a restock brings units back then, so
the reservation script (commerce/lua/reserve.lua) would refuse every buyer:
`sold_out`, or `conflict` once the drop has ended. This cache answers those
refusals exactly as the script would (the same checks in the same order:
window, account, the buyer's limit, stock); anything else goes to the script.

What the cache holds comes from one read at one instant (drop_final.lua),
done after the script refused `sold_out` or a `drop:updated` said the drop
looks final. A read is kept only if no sign that stock came back arrived
meanwhile (`stock_back`, `close`), so a restock racing the read is never
missed. The server calls `stock_back` for every `drop:updated` of a drop
with stock (its own and, through Redis pub/sub, every other process's), and
`open`s the cache only while it hears them.

Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from commerce import keys
from kernel.errors import Conflict, DomainError, SoldOut
from kernel.lua import Scripts

logger = logging.getLogger(__name__)

# Every process hears here that a drop may have stock again (a restock).
STOCK_BACK_CHANNEL = "droproom:drops:stock-back"
# A drop that is sold out with units held is looked at again at most this often.
LOOK_AGAIN_S = 1.0
MAX_DROPS = 10_000  # beyond, the cache starts again empty

# The script's own messages (commerce/lua/reserve_rules.lua).
NOT_LIVE = "the drop is not live"
NOT_ENOUGH = "not enough stock left"


@dataclass(frozen=True, slots=True)
class FinalDrop:
    starts_at: float
    ends_at: float
    limit: int
    requires_account: bool
    empty: bool  # no unit left or held (else: known only to have ended)
    bought: dict[str, int] = field(default_factory=dict)  # under a limit only

    def refusal(self, identity: str, qty: int, now: float, signed_in: bool) -> DomainError | None:
        """What reserve_rules.lua answers, when it cannot be anything else;
        None when the script must decide."""
        if now >= self.ends_at:
            return Conflict(NOT_LIVE)
        if now < self.starts_at or not self.empty:
            return None
        if self.requires_account and not signed_in:
            return None  # `unauthorized`: the script says it
        if self.limit > 0 and (signed_in or self.bought.get(identity, 0) + qty > self.limit):
            # `limit_reached` is the script's to say. An account's count may
            # still grow (a guest's orders claimed: claim_room.lua); a guest's
            # cannot while nothing is left or held.
            return None
        return SoldOut(NOT_ENOUGH)


def final_from_script(res: list[Any]) -> FinalDrop | None:
    if not res:
        return None
    raw = [v.decode() if isinstance(v, bytes) else str(v) for v in res]
    bought = {raw[i]: int(raw[i + 1]) for i in range(5, len(raw) - 1, 2)}
    limit, requires_account, empty = int(raw[2]), raw[3] == "1", raw[4] == "1"
    return FinalDrop(float(raw[0]), float(raw[1]), limit, requires_account, empty, bought)


class SoldOutDrops:
    """Per process. Closed (answers nothing) until the server hears stock
    coming back (`open`), and again whenever it may have missed it (`close`)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._scripts = Scripts(redis)
        self._final: dict[tuple[str, str], FinalDrop] = {}
        self._looked: dict[tuple[str, str], float] = {}
        self._reading: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._version = 0  # moves with every sign that stock came back
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        """Stock may come back unheard: forget every drop, answer nothing."""
        self._open = False
        self._version += 1
        self._final.clear()
        self._looked.clear()

    def stock_back(self, room: str, drop_id: str) -> None:
        """The drop may have units again (a restock, units held)."""
        self._version += 1
        self._final.pop((room, drop_id), None)
        self._looked.pop((room, drop_id), None)

    def knows(self, room: str, drop_id: str) -> bool:
        return (room, drop_id) in self._final

    def refusal(
        self, room: str, drop_id: str, identity: str, qty: int, now: float, signed_in: bool
    ) -> DomainError | None:
        """The script's refusal of this reservation, if the drop is known final."""
        if not self._open:
            return None
        final = self._final.get((room, drop_id))
        return None if final is None else final.refusal(identity, qty, now, signed_in)

    def suspect(self, room: str, drop_id: str, now: float) -> None:
        """The drop may be final (the script refused `sold_out`, or it was
        announced sold out or ended): read it once in the background."""
        key = (room, drop_id)
        if not self._open or key in self._final or key in self._reading:
            return
        if now < self._looked.get(key, float("-inf")) + LOOK_AGAIN_S:
            return
        self._looked[key] = now
        self._reading.add(key)
        task = asyncio.get_running_loop().create_task(self._read(room, drop_id, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, room: str, drop_id: str, now: float) -> None:
        key = (room, drop_id)
        version = self._version
        try:
            drop_keys = [keys.drop(room, drop_id), keys.drop_buyers(room, drop_id)]
            final = final_from_script(
                await self._scripts.run("commerce/drop_final", drop_keys, [repr(now)])
            )
        except (RedisError, DomainError) as exc:
            logger.info("room %s: could not read drop %s: %r", room, drop_id, exc)
            return
        finally:
            self._reading.discard(key)
        if final is None or not self._open or version != self._version:
            return  # not final, or stock may have come back while we read
        if len(self._final) >= MAX_DROPS:
            self._final.clear()
        self._final[key] = final

    async def settle(self) -> None:
        """Wait for the reads under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
