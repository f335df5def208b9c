"""The stage: raised hands, invitations, removal and mute.

These change room state only; the audio path acts on it through the stage
listeners `server/` tells. Must not import any framework.
"""

from enum import StrEnum

from kernel.events import Event, to_room
from rooms import keys
from rooms.model import Participant
from rooms.store import RoomStore


class StageOp(StrEnum):
    RAISE = "raise"
    LOWER = "lower"
    INVITE = "invite"
    REMOVE = "remove"
    MUTE = "mute"
    UNMUTE = "unmute"


_HAND_OPS = (StageOp.RAISE, StageOp.LOWER)


async def apply(
    store: RoomStore,
    room: str,
    target: str,
    op: StageOp,
    *,
    actor: str,
    actor_rank: int,
    now: float,
) -> tuple[Participant, list[Event]]:
    """Apply one stage operation; events only when something changed."""
    raw, changed = await store.run(
        "STAGE",
        [
            keys.people(room),
            keys.notable(room),
            keys.online(room),
            keys.log(room),
            keys.log_head(room),
        ],
        [target, str(op), actor_rank, now, actor],
    )
    person = Participant.from_json(raw)
    if not changed:
        return person, []
    if op in _HAND_OPS:
        return person, [to_room(room, "hand:updated", {"participant": person.to_wire()})]
    stage = await on_stage(store, room)
    payload = {"participant": person.to_wire(), "stage": [p.to_wire() for p in stage]}
    return person, [to_room(room, "stage:updated", payload)]


async def on_stage(store: RoomStore, room: str) -> list[Participant]:
    """Everyone on stage (they stay on it across reconnects)."""
    notable = sorted(await store.redis.smembers(keys.notable(room)))
    return [p for p in await store.participants(room, notable) if p.on_stage]
