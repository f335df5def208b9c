"""Persistent rooms: create, read, change settings (modules, guests, live).

Must not import any framework.
"""

import secrets
from collections.abc import Mapping
from typing import Any

from kernel import validate as v
from kernel.errors import Invalid, NotFound
from kernel.events import Event, to_room
from kernel.owners import ADMIN_OWNER
from rooms import keys
from rooms.events import ROOM_UPDATED
from rooms.model import ALL_MODULES, Module, Room
from rooms.store import RoomStore, dumps


def parse_modules(value: object) -> tuple[Module, ...]:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise Invalid("modules must be a list of module names")
    unknown = [m for m in value if m not in Module.__members__.values()]
    if unknown:
        raise Invalid(f"unknown modules: {', '.join(unknown)}; known: polls, qa, chat, shop")
    return tuple(m for m in ALL_MODULES if m in value)


def parse_new_room(p: Mapping[str, Any]) -> tuple[str, str, tuple[Module, ...], bool]:
    room_id = v.slug(p, "id") if p.get("id") is not None else secrets.token_urlsafe(6)
    title = v.text(p, "title", max_len=120)
    modules = parse_modules(p["modules"]) if p.get("modules") is not None else ALL_MODULES
    guests = v.opt_boolean(p, "guests", default=False)
    return room_id, title, modules, guests


async def create(
    store: RoomStore, p: Mapping[str, Any], now: float, owner: str = ADMIN_OWNER
) -> Room:
    """A new room owned by `owner` (a creator's account id, or the admin's);
    `Conflict` when the id is taken (never overwritten)."""
    room_id, title, modules, guests = parse_new_room(p)
    await store.run(
        "rooms/room_create",
        [keys.room(room_id), keys.log(room_id), keys.log_head(room_id)],
        [room_id, title, dumps([str(m) for m in modules]), int(guests), 0, now, owner],
    )
    await store.redis.sadd(keys.ROOMS_INDEX, room_id)
    if owner != ADMIN_OWNER:
        await store.redis.sadd(keys.owned_rooms(owner), room_id)
    return Room(room_id, title, modules, guests, False, now, owner)


def parse_changes(p: Mapping[str, Any]) -> dict[str, str]:
    changes: dict[str, str] = {}
    if p.get("title") is not None:
        changes["title"] = v.text(p, "title", max_len=120)
    if p.get("modules") is not None:
        changes["modules"] = dumps([str(m) for m in parse_modules(p["modules"])])
    for flag in ("guests", "live"):
        if p.get(flag) is not None:
            changes[flag] = "1" if v.boolean(p, flag) else "0"
    if not changes:
        raise Invalid("nothing to change: give title, modules, guests or live")
    return changes


async def update(
    store: RoomStore, room_id: str, p: Mapping[str, Any], now: float, by: str
) -> tuple[Room, list[Event]]:
    changes = parse_changes(p)
    await store.run(
        "rooms/room_update",
        [keys.room(room_id), keys.log(room_id), keys.log_head(room_id)],
        [dumps(changes), now, by],
    )
    room = await store.get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    if room.live:  # the live-grace sweep looks here (rooms/live.py)
        await store.redis.sadd(keys.LIVE_INDEX, room_id)
    return room, [to_room(room_id, ROOM_UPDATED, {"room": room.to_wire()})]


async def list_rooms(store: RoomStore, limit: int = 200, owner: str | None = None) -> list[Room]:
    """Every room (the lobby), or those of one creator's account (`owner`)."""
    index = keys.ROOMS_INDEX if owner is None else keys.owned_rooms(owner)
    ids = sorted(await store.redis.smembers(index))[:limit]
    rooms = [await store.get_room(room_id) for room_id in ids]
    return [room for room in rooms if room is not None]
