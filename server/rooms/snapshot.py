"""The full `room:state` snapshot: the room's view plus every feature's part
(shop slots and drops, replays, speaking levels)."""

from typing import Any

from aiohttp import web

from rooms.snapshot import room_view
from server.appkeys import ROOMS, SNAPSHOT_PARTS
from server.roles import Claims


async def build(app: web.Application, claims: Claims, now: float) -> dict[str, Any]:
    state = await room_view(app[ROOMS], claims.room, claims.identity, now)
    for part in app[SNAPSHOT_PARTS]:
        state.update(await part(claims.room, claims.identity))
    if state["me"] is None:
        state["me"] = {
            "identity": claims.identity,
            "name": claims.name,
            "role": claims.role.label,
            "on_stage": False,
            "muted": False,
            "hand_raised": False,
        }
    state["me"]["role"] = claims.role.label
    state["me"]["token_expires_at"] = claims.exp
    return state
