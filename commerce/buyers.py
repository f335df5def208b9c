"""Where a buyer has bought: the rooms holding their orders, across rooms.

A room's orders live under the room's hash tag; a buyer's `/me/orders` and
`/me/library` need every room the buyer ordered in. The room is noted before
the order is created (an idempotent SADD), so no order, paid or not, is ever
missing from it. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

from typing import Any

from commerce import keys

ACCOUNT_PREFIX = "acct_"
GUEST_PREFIX = "guest-"


def is_account(identity: str) -> bool:
    """A signed-in buyer: an identity only sign-in (`/join`) hands out (admin
    and creator tokens may not name it), so a drop requiring an account and
    the per-account limits may trust it."""
    return identity.startswith(ACCOUNT_PREFIX)


def is_guest(identity: str) -> bool:
    """An identity `/guest` handed out: a new one on every join."""
    return identity.startswith(GUEST_PREFIX)


class BuyerIndex:
    def __init__(self, redis: Any) -> None:
        self._redis: Any = redis

    async def note(self, identity: str, room: str) -> None:
        await self._redis.sadd(keys.buyer_rooms(identity), room)

    async def rooms_of(self, identity: str) -> list[str]:
        raw = await self._redis.smembers(keys.buyer_rooms(identity))
        return sorted(r.decode() if isinstance(r, bytes) else str(r) for r in raw)
