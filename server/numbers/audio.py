"""Audio health for `stats:updated`, across processes: each process notes
what its own WHEP listeners of each room look like (media.health) in the
room's `stats:audio` hash every stats tick; the process computing the room's
numbers sums the notes that are fresh."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from media.health import room_health
from rooms import keys
from server.appkeys import ROOMS

FRESH_S = 6.0  # a note older than this is from a process that stopped
NOTE_TTL_S = 30


def _engine(app: web.Application) -> Any:
    from server.audio.routes import MEDIA  # the audio feature owns the engine

    return app.get(MEDIA)


async def note(app: web.Application, token: str, now: float) -> None:
    engine = _engine(app)
    if engine is None:
        return
    redis = app[ROOMS].redis
    for room, h in (await room_health(list(engine.sessions.values()))).items():
        value = {"connected": h.connected, "reported": h.reported, "loss": h.loss, "at": now}
        await redis.hset(keys.stats_audio(room), token, json.dumps(value))
        await redis.expire(keys.stats_audio(room), NOTE_TTL_S)


async def health(app: web.Application, room: str, now: float) -> dict[str, Any]:
    notes = await app[ROOMS].redis.hgetall(keys.stats_audio(room))
    fresh = [n for n in map(json.loads, notes.values()) if now - n["at"] <= FRESH_S]
    reported = sum(n["reported"] for n in fresh)
    loss = round(sum(n["loss"] for n in fresh) / reported, 4) if reported else None
    return {"listeners_connected": sum(n["connected"] for n in fresh), "packet_loss": loss}
