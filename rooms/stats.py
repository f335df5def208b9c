"""The room's side of the event numbers: listeners now, their peak, unique
listeners and joins and listeners per minute. The presence scripts keep them
as people come and go (rooms/lua/join.lua, leave.lua through
listeners_note.lua); this module reads them and lets the stats tick note a
quiet minute's listeners. Never computed by scanning. Must not import any
framework.
"""

from dataclasses import dataclass

from rooms import keys
from rooms.store import RoomStore

MINUTE_S = 60


@dataclass(frozen=True, slots=True)
class ListenerNumbers:
    now: int
    peak: int
    unique: int
    joins: dict[int, int]  # minute start -> identities arriving
    present: dict[int, int]  # minute start -> the most listeners present


def minute_of(now: float) -> int:
    return int(now // MINUTE_S) * MINUTE_S


def _minutes(raw: dict[str, str]) -> dict[int, int]:
    return {int(m): int(n) for m, n in raw.items()}


async def listener_numbers(store: RoomStore, room: str) -> ListenerNumbers:
    r = store.redis
    now = max(0, int(await r.hget(keys.role_counts(room), "listener") or 0))
    peak = int(await r.hget(keys.stats(room), "peak") or 0)
    return ListenerNumbers(
        now=now,
        peak=max(peak, now),
        unique=int(await r.pfcount(keys.stats_unique(room))),
        joins=_minutes(await r.hgetall(keys.stats_joins(room))),
        present=_minutes(await r.hgetall(keys.stats_listeners(room))),
    )


async def note_listeners(store: RoomStore, room: str, now: float) -> int:
    """Note the listeners present now in this minute (and the peak)."""
    script_keys = [keys.role_counts(room), keys.stats(room), keys.stats_listeners(room)]
    return int(await store.run("rooms/listeners_tick", script_keys, [repr(now)]))


async def hold_lease(store: RoomStore, room: str, token: str, ttl_s: float) -> bool:
    """Whether the process `token` computes the room's live numbers now (one
    per room however many processes run; taken over when its holder stops
    renewing)."""
    args = [token, int(ttl_s * 1000)]
    return bool(await store.run("rooms/lease", [keys.stats_lease(room)], args))


async def live_rooms(store: RoomStore) -> list[str]:
    """The rooms that are live now (the live index, checked on each room)."""
    found = []
    for room_id in sorted(await store.redis.smembers(keys.LIVE_INDEX)):
        if await store.redis.hget(keys.room(room_id), "live") == "1":
            found.append(room_id)
    return found
