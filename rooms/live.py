"""Whether a room is live, as its stage decides: a room becomes live when
someone on its stage publishes, and stops being live once nobody has
published for the grace period (the host may still set `live` by hand;
the grace then applies the same way).

The process that holds a room's publishers calls `started_publishing`
when one connects and `still_publishing` on every sweep; any process's
sweep calls `end_idle`. Each decision is one Lua script on the room's slot, so two
processes never flip a room twice. Must not import any framework.
"""

from collections.abc import Iterable

from kernel.errors import NotFound
from kernel.events import Event, to_room
from rooms import keys
from rooms.events import ROOM_UPDATED
from rooms.store import RoomStore

BY = "stage"  # who the log names for changes made by this module


def _keys(room_id: str) -> list[str]:
    return [
        keys.room(room_id),
        keys.publisher_seen(room_id),
        keys.log(room_id),
        keys.log_head(room_id),
    ]


def _ttl_ms(grace_s: float) -> int:
    """Long enough that the mark outlives a sweep's gap; short enough to go."""
    return int((2 * grace_s + 60) * 1000)


async def _updated(store: RoomStore, room_id: str) -> Event:
    room = await store.get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    return to_room(room_id, ROOM_UPDATED, {"room": room.to_wire()})


async def started_publishing(
    store: RoomStore, room_id: str, now: float, grace_s: float
) -> list[Event]:
    """Someone on the room's stage started publishing: the room is live."""
    went_live = await store.run("rooms/publishing", _keys(room_id), [now, _ttl_ms(grace_s), BY, 1])
    if went_live != 1:
        return []
    await store.redis.sadd(keys.LIVE_INDEX, room_id)
    return [await _updated(store, room_id)]


async def still_publishing(
    store: RoomStore, room_ids: Iterable[str], now: float, grace_s: float
) -> None:
    """Rooms that have a publisher now: their grace starts again."""
    for room_id in room_ids:
        await store.run("rooms/publishing", _keys(room_id), [now, _ttl_ms(grace_s), BY, 0])


async def end_idle(
    store: RoomStore, now: float, grace_s: float, publishing_here: Iterable[str] = ()
) -> list[Event]:
    """Live rooms nobody has published in for `grace_s` stop being live."""
    skip = set(publishing_here)
    events = []
    for room_id in sorted(await store.redis.smembers(keys.LIVE_INDEX)):
        if room_id in skip:
            continue
        outcome = await store.run(
            "rooms/end_if_idle", _keys(room_id), [now, grace_s, _ttl_ms(grace_s), BY]
        )
        if outcome == 1:
            events.append(await _updated(store, room_id))
        if outcome != 0:
            await store.redis.srem(keys.LIVE_INDEX, room_id)
    return events


async def index_live_rooms(store: RoomStore, room_ids: Iterable[str]) -> None:
    """Put rooms that are live into the sweep's index (rooms set live by
    hand, and rooms made live before the index existed)."""
    for room_id in room_ids:
        await store.redis.sadd(keys.LIVE_INDEX, room_id)
