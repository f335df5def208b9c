"""The room's live HLS playlist in Redis, so any process or node serves it
(`GET /hls/{room}/index.m3u8`), not only the one writing the segments.

    await put(store, room, session, playlist, ttl_s)   # at every new segment
    await current(store, room)      # the playlist text, or None (not live)
    await drop(store, room, session)  # when that writer stops

A writer that stops without dropping it (its process died) leaves a
playlist that expires by itself `ttl_s` after its last segment. Must not
import any framework.
"""

from __future__ import annotations

from rooms import keys
from rooms.store import RoomStore


async def put(store: RoomStore, room: str, session: str, playlist: str, ttl_s: float) -> None:
    ttl_ms = max(1000, int(ttl_s * 1000))
    await store.run("rooms/hls_put", [keys.hls_playlist(room)], [session, playlist, ttl_ms])


async def current(store: RoomStore, room: str) -> str | None:
    raw = await store.redis.hget(keys.hls_playlist(room), "playlist")
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def drop(store: RoomStore, room: str, session: str) -> bool:
    removed = await store.run("rooms/hls_drop", [keys.hls_playlist(room)], [session])
    return bool(removed)
