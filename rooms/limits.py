"""Rate limits per identity and action: a fixed window counted in Redis.

Must not import any framework.
"""

from dataclasses import dataclass

from kernel.errors import RateLimited
from rooms import keys
from rooms.store import RoomStore


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window_s: float


LIMITS: dict[str, Limit] = {
    "chat": Limit(5, 5.0),
    "reaction": Limit(10, 2.0),
    "vote": Limit(10, 10.0),
    "question": Limit(3, 30.0),
    "upvote": Limit(30, 10.0),
    "hand": Limit(10, 10.0),
    "checkout": Limit(10, 10.0),  # checkout:start and order:cancel (each may call Stripe)
}


# Guest tokens handed out per remote address (POST /api/v1/rooms/{room}/guest).
GUEST_TOKENS = Limit(10, 60.0)


async def _allowed(store: RoomStore, key: str, limit: Limit) -> bool:
    """Count one in `key`'s window: the INCR and the window's expiry are one
    script on one key (a counter never outlives its window)."""
    window_ms = int(limit.window_s * 1000)
    return bool(await store.run("kernel/rate", [key], [limit.count, window_ms]))


async def check(store: RoomStore, room: str, action: str, identity: str) -> None:
    """Count one `action`; `RateLimited` once the window's budget is spent."""
    limit = LIMITS[action]
    if not await _allowed(store, keys.rate(room, action, identity), limit):
        raise RateLimited(
            f"too many {action} actions: at most {limit.count} per {limit.window_s:g} s"
        )


async def check_guest(store: RoomStore, address: str) -> None:
    """Count one guest token for `address`; `RateLimited` beyond GUEST_TOKENS."""
    if not await _allowed(store, keys.guest_rate(address), GUEST_TOKENS):
        raise RateLimited("too many guest tokens from this address; try again in a minute")
