"""Coalesced broadcasts: a storm of votes or joins becomes a few messages a
second. Each process flushes what its own handlers changed; the values sent
are read fresh from Redis, so any process's flush is correct.
"""

import logging
from collections import defaultdict
from typing import Any

from kernel.events import Event, to_room
from rooms import polls, presence
from rooms.events import POLL_UPDATED, PRESENCE_UPDATED
from rooms.model import Participant
from rooms.store import RoomStore

logger = logging.getLogger(__name__)


class TallyBroadcaster:
    """Polls whose tallies changed since the last flush."""

    def __init__(self, store: RoomStore) -> None:
        self.store = store
        self._dirty: set[tuple[str, str]] = set()

    def touch(self, room: str, poll_id: str) -> None:
        self._dirty.add((room, poll_id))

    async def flush(self, now: float) -> list[Event]:
        dirty, self._dirty = self._dirty, set()
        events = []
        for room, poll_id in dirty:
            poll = await polls.get(self.store, room, poll_id)
            payload = {"poll": poll.to_wire(now), "server_time": now}  # clients measure lag
            events.append(to_room(room, POLL_UPDATED, payload))
        return events


class PresenceBroadcaster:
    """Joins and leaves per room since the last flush, sent as one delta."""

    def __init__(self, store: RoomStore) -> None:
        self.store = store
        self._joined: dict[str, dict[str, Participant]] = defaultdict(dict)
        self._left: dict[str, set[str]] = defaultdict(set)

    def joined(self, room: str, person: Participant) -> None:
        self._left[room].discard(person.identity)
        self._joined[room][person.identity] = person

    def left(self, room: str, identity: str) -> None:
        self._joined[room].pop(identity, None)
        self._left[room].add(identity)

    async def flush(self, now: float) -> list[Event]:
        joined, self._joined = self._joined, defaultdict(dict)
        left, self._left = self._left, defaultdict(set)
        events = []
        for room in set(joined) | set(left):
            if not joined.get(room) and not left.get(room):
                continue
            payload: dict[str, Any] = {
                "joined": [p.to_wire() for p in joined.get(room, {}).values()],
                "left": sorted(left.get(room, ())),
                "counts": await presence.counts(self.store, room),
                "server_time": now,
            }
            events.append(to_room(room, PRESENCE_UPDATED, payload))
        return events
