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


async def check(store: RoomStore, room: str, action: str, identity: str) -> None:
    """Count one `action`; `RateLimited` once the window's budget is spent."""
    limit = LIMITS[action]
    allowed = await store.run(
        "rooms/rate", [keys.rate(room, action, identity)], [limit.count, int(limit.window_s * 1000)]
    )
    if not allowed:
        raise RateLimited(
            f"too many {action} actions: at most {limit.count} per {limit.window_s:g} s"
        )
