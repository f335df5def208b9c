"""Live polls: 2 to 10 options, one vote per identity (a re-vote moves it),
an optional duration after which the poll closes by itself.

Tallies are broadcast coalesced by `server/`; a vote returns the voter's view
at once. Must not import any framework.
"""

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kernel import validate as v
from kernel.errors import Invalid, NotFound
from kernel.events import Event, to_room
from rooms import keys
from rooms.events import POLL_UPDATED
from rooms.model import Poll
from rooms.store import RoomStore, dumps

MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_DURATION_S = 24 * 3600
MAX_OPEN_POLLS = 20
OPEN_POLLS_SCAN = 100  # the cap counts the open polls among the room's last this many
SNAPSHOT_POLLS = 20


@dataclass(frozen=True, slots=True)
class PollDraft:
    question: str
    options: tuple[str, ...]
    duration_s: float | None


def parse_draft(p: Mapping[str, Any]) -> PollDraft:
    question = v.text(p, "question", max_len=200)
    options = p.get("options")
    if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise Invalid(f"options must be a list of {MIN_OPTIONS} to {MAX_OPTIONS} strings")
    parsed = tuple(v.text({"option": o}, "option", max_len=80) for o in options)
    if len(set(parsed)) != len(parsed):
        raise Invalid("options must be different from each other")
    duration = p.get("duration_s")
    duration_s = None if duration is None else v.number(p, "duration_s", lo=1, hi=MAX_DURATION_S)
    return PollDraft(question, parsed, duration_s)


async def get(store: RoomStore, room: str, poll_id: str) -> Poll:
    h = await store.redis.hgetall(keys.poll(room, poll_id))
    if not h:
        raise NotFound("no such poll")
    return Poll.from_hash(h)


async def recent(store: RoomStore, room: str, limit: int = SNAPSHOT_POLLS) -> list[Poll]:
    ids = await store.redis.lrange(keys.polls(room), -limit, -1)
    pipe = store.redis.pipeline(transaction=False)
    for poll_id in ids:
        pipe.hgetall(keys.poll(room, poll_id))
    return [Poll.from_hash(h) for h in await pipe.execute() if h]


async def create(
    store: RoomStore, room: str, draft: PollDraft, now: float
) -> tuple[Poll, list[Event]]:
    """A new open poll; `Conflict` when MAX_OPEN_POLLS of the room's last
    OPEN_POLLS_SCAN polls are open (checked inside the creating script)."""
    poll_id = secrets.token_hex(6)
    closes_at = now + draft.duration_s if draft.duration_s else None
    await store.run(
        "rooms/poll_create",
        [keys.poll(room, poll_id), keys.polls(room), keys.log(room), keys.log_head(room)],
        [
            poll_id,
            draft.question,
            dumps(list(draft.options)),
            len(draft.options),
            "" if closes_at is None else repr(closes_at),
            now,
            MAX_OPEN_POLLS,
            OPEN_POLLS_SCAN,
            keys.poll(room, ""),
        ],
    )
    if closes_at is not None:
        await store.redis.zadd(keys.POLL_DEADLINES, {f"{room}|{poll_id}": closes_at})
    poll = Poll(
        poll_id, draft.question, draft.options, (0,) * len(draft.options), False, closes_at, now
    )
    return poll, [to_room(room, POLL_UPDATED, {"poll": poll.to_wire(now)})]


async def vote(
    store: RoomStore, room: str, poll_id: str, identity: str, option: int, now: float
) -> tuple[Poll, bool]:
    """Record the vote; True when the tallies changed (the caller coalesces)."""
    changed = await store.run(
        "rooms/poll_vote",
        [
            keys.poll(room, poll_id),
            keys.poll_votes(room, poll_id),
            keys.log(room),
            keys.log_head(room),
        ],
        [poll_id, identity, option, now],
    )
    return await get(store, room, poll_id), bool(changed)


async def close(
    store: RoomStore, room: str, poll_id: str, now: float, by: str
) -> tuple[Poll, list[Event]]:
    closed = await store.run(
        "rooms/poll_close",
        [keys.poll(room, poll_id), keys.log(room), keys.log_head(room)],
        [poll_id, now, by],
    )
    await store.redis.zrem(keys.POLL_DEADLINES, f"{room}|{poll_id}")
    poll = await get(store, room, poll_id)
    if not closed:
        return poll, []
    return poll, [to_room(room, POLL_UPDATED, {"poll": poll.to_wire(now)})]


async def close_due(store: RoomStore, now: float) -> list[Event]:
    """Close every poll whose deadline passed; each is closed by one node only."""
    due = await store.redis.zrangebyscore(keys.POLL_DEADLINES, "-inf", now, start=0, num=100)
    events: list[Event] = []
    for member in due:
        if not await store.redis.zrem(keys.POLL_DEADLINES, member):
            continue  # another node took it
        room, poll_id = member.split("|", 1)
        try:
            events += (await close(store, room, poll_id, now, "timer"))[1]
        except NotFound:
            continue
    return events
