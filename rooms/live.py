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
from kernel.eventlog import LUA_APPEND
from kernel.events import Event, to_room
from rooms import keys
from rooms.store import RoomStore

BY = "stage"  # who the log names for changes made by this module

# KEYS room seen log head ; ARGV now ttl_ms by starting ("1": a publisher just
# connected, "0": still publishing). Returns 1 if the room went live.
_PUBLISHING = (
    LUA_APPEND
    + """
local room_key, seen_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, ttl_ms, by, starting = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
if redis.call('EXISTS', room_key) == 0 then return -1 end
redis.call('SET', seen_key, now, 'PX', ttl_ms)
-- only a start makes a room live: a host who ended it by hand while still
-- publishing (trying the microphone) is not overruled by the next sweep
if not starting or redis.call('HGET', room_key, 'live') == '1' then return 0 end
redis.call('HSET', room_key, 'live', '1')
log_append(log_key, head_key, 'room.updated', cjson.encode({live = '1', by = by}), now)
return 1
"""
)

# KEYS room seen log head ; ARGV now grace_s ttl_ms by.
# Returns 1 if the room stopped being live, 0 if it stays live, -1 if it is not live.
_END_IF_IDLE = (
    LUA_APPEND
    + """
local room_key, seen_key, log_key, head_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now, grace_s, ttl_ms, by = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call('HGET', room_key, 'live') ~= '1' then
  redis.call('DEL', seen_key)
  return -1
end
local seen = tonumber(redis.call('GET', seen_key))
if not seen then
  -- live without a publisher seen (set by hand, or data from before): the grace starts now
  redis.call('SET', seen_key, ARGV[1], 'PX', ttl_ms)
  return 0
end
if now - seen < grace_s then return 0 end
redis.call('HSET', room_key, 'live', '0')
redis.call('DEL', seen_key)
log_append(log_key, head_key, 'room.updated', cjson.encode({live = '0', by = by}), ARGV[1])
return 1
"""
)


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
    return to_room(room_id, "room:updated", {"room": room.to_wire()})


async def started_publishing(
    store: RoomStore, room_id: str, now: float, grace_s: float
) -> list[Event]:
    """Someone on the room's stage started publishing: the room is live."""
    script = store.redis.register_script(_PUBLISHING)
    went_live = await script(keys=_keys(room_id), args=[now, _ttl_ms(grace_s), BY, 1])
    if went_live != 1:
        return []
    await store.redis.sadd(keys.LIVE_INDEX, room_id)
    return [await _updated(store, room_id)]


async def still_publishing(
    store: RoomStore, room_ids: Iterable[str], now: float, grace_s: float
) -> None:
    """Rooms that have a publisher now: their grace starts again."""
    script = store.redis.register_script(_PUBLISHING)
    for room_id in room_ids:
        await script(keys=_keys(room_id), args=[now, _ttl_ms(grace_s), BY, 0])


async def end_idle(
    store: RoomStore, now: float, grace_s: float, publishing_here: Iterable[str] = ()
) -> list[Event]:
    """Live rooms nobody has published in for `grace_s` stop being live."""
    script = store.redis.register_script(_END_IF_IDLE)
    skip = set(publishing_here)
    events = []
    for room_id in sorted(await store.redis.smembers(keys.LIVE_INDEX)):
        if room_id in skip:
            continue
        outcome = await script(keys=_keys(room_id), args=[now, grace_s, _ttl_ms(grace_s), BY])
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
