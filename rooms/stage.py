"""The stage: raised hands, invitations, removal and mute.

These change room state only; the audio path acts on it through the stage
listeners `server/` tells. Must not import any framework.
"""

from enum import StrEnum

from kernel.events import Event, to_room
from rooms import keys
from rooms.events import HAND_UPDATED, STAGE_UPDATED
from rooms.model import Participant
from rooms.presence import Departure
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
        "rooms/stage",
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
        return person, [hand_updated(room, person)]
    return person, [await stage_updated(store, room, person)]


def hand_updated(room: str, person: Participant) -> Event:
    return to_room(room, HAND_UPDATED, {"participant": person.to_wire()})


async def stage_updated(store: RoomStore, room: str, person: Participant) -> Event:
    stage = await on_stage(store, room)
    payload = {"participant": person.to_wire(), "stage": [p.to_wire() for p in stage]}
    return to_room(room, STAGE_UPDATED, payload)


async def departure_events(store: RoomStore, room: str, gone: Departure) -> list[Event]:
    """Someone's last connection closed: the stage or hands they left."""
    if gone.person is None or not gone.stage_change:
        return []
    if gone.stage_change == "hand":
        return [hand_updated(room, gone.person)]
    return [await stage_updated(store, room, gone.person)]


def is_revoked(claims_gen: int | None, person: Participant | None) -> bool:
    """A speaker token minted on an invitation carries the stage generation
    of that time; removal from the stage (or leaving the room) moves the
    generation on, which revokes it. Tokens without one are never revoked."""
    if claims_gen is None:
        return False
    return person is None or person.stage_gen != claims_gen


async def on_stage(store: RoomStore, room: str) -> list[Participant]:
    """Everyone on stage (they stay on it across reconnects)."""
    notable = sorted(await store.redis.smembers(keys.notable(room)))
    return [p for p in await store.participants(room, notable) if p.on_stage]
