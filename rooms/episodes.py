"""Episodes of a persistent room: dated sessions listeners can put in their
calendar and be reminded of.

An episode is `{id, title, starts_at, ends_at}` (unix seconds; `ends_at` may
be left out: it then lasts `DEFAULT_DURATION_S`). Only upcoming episodes are
kept: one that ended leaves the room's list (at the next change of the
room's episodes, or when the scheduler's sweep reaches its end). The room
hash carries the soonest `SHOWN` as `episodes`, so the lobby and the
snapshot get them with the room. Each change is one script on the room's
slot; the due indexes (`keys.EPISODE_REMINDERS`, `keys.EPISODE_ENDS`) are
written after it and read by the scheduler's sweeps. Must not import
any framework.
"""

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kernel import validate as v
from kernel.errors import Conflict, Invalid, NotFound
from kernel.events import Event, to_room
from rooms import keys
from rooms.events import ROOM_UPDATED
from rooms.store import RoomStore

MAX_TITLE = 120
MAX_AHEAD_S = 2 * 366 * 86400  # how far ahead an episode may start
MAX_LENGTH_S = 7 * 86400  # the longest an episode may last
DEFAULT_DURATION_S = 3600  # an episode without ends_at
MAX_UPCOMING = 100  # per room
SHOWN = 5  # upcoming episodes the room object carries (lobby, snapshot)
CONFLICT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Episode:
    id: str
    title: str
    starts_at: int
    ends_at: int | None = None

    @property
    def end(self) -> int:
        """When it ends: `ends_at`, or the default duration after the start."""
        return self.ends_at if self.ends_at is not None else self.starts_at + DEFAULT_DURATION_S

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> "Episode":
        d = json.loads(raw)
        ends_at = d.get("ends_at")
        end = None if ends_at is None else int(ends_at)
        return cls(d["id"], d["title"], int(d["starts_at"]), end)


class Due(StrEnum):
    REMIND = "remind"  # mail the followers
    END = "end"  # leaves the room's upcoming list

    @property
    def due_key(self) -> str:
        return keys.EPISODE_REMINDERS if self is Due.REMIND else keys.EPISODE_ENDS


@dataclass(frozen=True, slots=True)
class DueItem:
    kind: Due
    room: str
    episode: str
    at: float

    @property
    def member(self) -> str:
        return f"{self.room}|{self.episode}"


# --- validation (pure) -------------------------------------------------------


def _time(p: Mapping[str, Any], key: str) -> int:
    value = p.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Invalid(f"{key} must be a time in unix seconds")
    return v.integer({key: int(value)}, key, lo=0, hi=2**40)


def _starts_at(p: Mapping[str, Any], now: float) -> int:
    starts_at = _time(p, "starts_at")
    if starts_at <= now:
        raise Invalid("starts_at must be in the future")
    if starts_at > now + MAX_AHEAD_S:
        raise Invalid("starts_at must be within two years from now")
    return starts_at


def _check_end(starts_at: int, ends_at: int | None, now: float) -> None:
    if ends_at is None:
        return
    if ends_at <= starts_at:
        raise Invalid("ends_at must be after starts_at")
    if ends_at - starts_at > MAX_LENGTH_S:
        raise Invalid("an episode lasts at most 7 days")
    if ends_at <= now:
        raise Invalid("ends_at must be in the future")


def _opt_end(p: Mapping[str, Any]) -> int | None:
    return None if p.get("ends_at") is None else _time(p, "ends_at")


def parse_new(p: Mapping[str, Any], now: float) -> Episode:
    title = v.text(p, "title", max_len=MAX_TITLE)
    starts_at = _starts_at(p, now)
    ends_at = _opt_end(p)
    _check_end(starts_at, ends_at, now)
    return Episode("ep_" + secrets.token_hex(5), title, starts_at, ends_at)


def merge(old: Episode, p: Mapping[str, Any], now: float) -> Episode:
    """`old` with the changes of a PATCH (`ends_at: null` clears it)."""
    if not any(k in p for k in ("title", "starts_at", "ends_at")):
        raise Invalid("nothing to change: give title, starts_at or ends_at")
    title = v.text(p, "title", max_len=MAX_TITLE) if "title" in p else old.title
    starts_at = _starts_at(p, now) if "starts_at" in p else old.starts_at
    ends_at = _opt_end(p) if "ends_at" in p else old.ends_at
    _check_end(starts_at, ends_at, now)
    return Episode(old.id, title, starts_at, ends_at)


# --- changes -----------------------------------------------------------------


def _keys(room_id: str) -> list[str]:
    return [
        keys.room(room_id),
        keys.episodes(room_id),
        keys.episode_starts(room_id),
        keys.episode_ends(room_id),
        keys.log(room_id),
        keys.log_head(room_id),
    ]


async def _updated(store: RoomStore, room_id: str) -> list[Event]:
    room = await store.get_room(room_id)
    return [] if room is None else [to_room(room_id, ROOM_UPDATED, {"room": room.to_wire()})]


async def _put(store: RoomStore, room_id: str, ep: Episode, expected: str, now: float) -> None:
    await store.run(
        "rooms/episode_put",
        _keys(room_id),
        [ep.id, ep.to_json(), ep.starts_at, ep.end, expected, now, SHOWN, MAX_UPCOMING],
    )


async def _schedule(store: RoomStore, room_id: str, ep: Episode, lead_s: float) -> None:
    member = f"{room_id}|{ep.id}"
    await store.redis.zadd(keys.EPISODE_REMINDERS, {member: ep.starts_at - lead_s})
    await store.redis.zadd(keys.EPISODE_ENDS, {member: ep.end})


async def create(
    store: RoomStore, room_id: str, p: Mapping[str, Any], now: float, lead_s: float
) -> tuple[Episode, list[Event]]:
    """A new episode; `LimitReached` past `MAX_UPCOMING`, `NotFound` for no room."""
    ep = parse_new(p, now)
    await _put(store, room_id, ep, "", now)
    await _schedule(store, room_id, ep, lead_s)
    return ep, await _updated(store, room_id)


async def update(
    store: RoomStore, room_id: str, episode_id: str, p: Mapping[str, Any], now: float, lead_s: float
) -> tuple[Episode, list[Event]]:
    """Changes an upcoming episode: read, merge, then write only if nobody
    changed it meanwhile (tried again a few times, then `Conflict`)."""
    for attempt in range(CONFLICT_RETRIES):
        raw = await _raw(store, room_id, episode_id)
        ep = merge(Episode.from_json(raw), p, now)
        try:
            await _put(store, room_id, ep, raw, now)
        except Conflict:
            if attempt == CONFLICT_RETRIES - 1:
                raise
            continue
        await _schedule(store, room_id, ep, lead_s)
        return ep, await _updated(store, room_id)
    raise AssertionError("unreachable")  # pragma: no cover


async def delete(store: RoomStore, room_id: str, episode_id: str, now: float) -> list[Event]:
    await store.run("rooms/episode_delete", _keys(room_id), [episode_id, now, SHOWN])
    for kind in Due:
        await store.redis.zrem(kind.due_key, f"{room_id}|{episode_id}")
    return await _updated(store, room_id)


# --- reads -------------------------------------------------------------------


async def _raw(store: RoomStore, room_id: str, episode_id: str) -> str:
    raw = await store.redis.hget(keys.episodes(room_id), episode_id)
    if raw is None:
        raise NotFound("no such episode")
    return str(raw)


async def get(store: RoomStore, room_id: str, episode_id: str, now: float) -> Episode | None:
    """The episode if it has not ended by `now`."""
    raw = await store.redis.hget(keys.episodes(room_id), episode_id)
    if raw is None:
        return None
    ep = Episode.from_json(raw)
    return ep if ep.end > now else None


async def upcoming(store: RoomStore, room_id: str, now: float) -> list[Episode]:
    """Episodes that have not ended by `now`, soonest first."""
    ids = await store.redis.zrange(keys.episode_starts(room_id), 0, -1)
    if not ids:
        return []
    raws = await store.redis.hmget(keys.episodes(room_id), ids)
    found = [Episode.from_json(raw) for raw in raws if raw]
    return [ep for ep in found if ep.end > now]


# --- the sweep ---------------------------------------------------------------


async def due(store: RoomStore, kind: Due, now: float, limit: int = 200) -> list[DueItem]:
    """What is due by `now`: reminders to send, or episodes that ended."""
    rows = await store.redis.zrangebyscore(
        kind.due_key, "-inf", now, start=0, num=limit, withscores=True
    )
    items = []
    for member, score in rows:
        room_id, _, episode_id = str(member).partition("|")
        items.append(DueItem(kind, room_id, episode_id, float(score)))
    return items


async def done(store: RoomStore, item: DueItem) -> bool:
    """Takes `item` off its due index unless a change moved it meanwhile."""
    return bool(await store.run("rooms/due_take", [item.kind.due_key], [item.member, item.at]))


async def refresh(store: RoomStore, room_id: str, now: float) -> list[Event]:
    """Drops the room's ended episodes; a `room:updated` if any did."""
    ended = await store.run("rooms/episodes_refresh", _keys(room_id)[:4], [now, SHOWN])
    return await _updated(store, room_id) if int(ended) else []
