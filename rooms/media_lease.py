"""Who owns a room's media: one process per room, everywhere.

The owner of a room's media runs its mixer, encoder, recorder and HLS; it
holds a Redis lease that it renews while it has the room's media open. The
lease carries a fencing token that only grows (a counter beside it), so a
process that lost the lease without knowing it (paused, partitioned) is
recognised by its lower token: edges and the recorder ignore what it sends.
Taking, renewing and reading are one script each on the room's slot. Must
not import any framework.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rooms import keys
from rooms.store import RoomStore

# A holder renews at a third of this; one that dies is replaced after it.
DEFAULT_TTL_S = 3.0


@dataclass(frozen=True)
class MediaLease:
    """The room's media lease as it stands: `held` is whether the asking
    process holds it; `endpoint` is what the holder announced."""

    room: str
    held: bool
    holder: str
    token: int
    endpoint: dict[str, Any]


def _lease(room: str, reply: list[Any]) -> MediaLease:
    held, holder, token, endpoint = reply
    return MediaLease(
        room=room,
        held=bool(int(held)),
        holder=holder.decode() if isinstance(holder, bytes) else str(holder),
        token=int(token),
        endpoint=json.loads(endpoint or "{}"),
    )


async def hold(
    store: RoomStore,
    room: str,
    holder: str,
    endpoint: dict[str, Any],
    ttl_s: float = DEFAULT_TTL_S,
) -> MediaLease:
    """Take the lease when free or renew it when ours; either way, say who
    holds it now (compare `held`)."""
    reply = await store.run(
        "rooms/media_lease",
        [keys.media_lease(room), keys.media_fence(room)],
        [holder, int(ttl_s * 1000), json.dumps(endpoint, sort_keys=True)],
    )
    return _lease(room, reply)


async def give_up(store: RoomStore, room: str, holder: str, token: int) -> bool:
    """End our lease now (the room's media closed cleanly). Only the holder
    with that token ends it; a later holder's lease is left alone."""
    reply = await store.run("rooms/media_lease_drop", [keys.media_lease(room)], [holder, token])
    return bool(int(reply))


async def current(store: RoomStore, room: str) -> MediaLease | None:
    """The lease as it stands, or None when nobody holds the room's media."""
    found = await store.redis.hmget(keys.media_lease(room), ["holder", "token", "endpoint"])
    holder, token, endpoint = found
    if holder is None or token is None:
        return None
    return _lease(room, [0, holder, token, endpoint])
