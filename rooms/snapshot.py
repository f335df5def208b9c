"""The room's part of the `room:state` snapshot a client gets on connect.

Must not import any framework.
"""

from typing import Any

from kernel.errors import NotFound
from rooms import chat, polls, presence, qa, stage
from rooms.store import RoomStore


async def room_view(store: RoomStore, room_id: str, identity: str, now: float) -> dict[str, Any]:
    room = await store.get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    here = await presence.view(store, room_id)
    me = await store.get_participant(room_id, identity)
    return {
        "room": room.to_wire(),
        "server_time": now,
        "participants": [p.to_wire() for p in here.participants],
        "counts": here.counts,
        "stage": [p.to_wire() for p in await stage.on_stage(store, room_id)],
        "polls": [p.to_wire(now) for p in await polls.recent(store, room_id)],
        "questions": [q.to_wire() for q in await qa.ranked(store, room_id)],
        "chat": await chat.recent(store, room_id),
        "slots": [],
        "drops": [],
        "me": me.to_wire() if me else None,
    }
