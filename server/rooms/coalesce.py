"""Coalesced broadcasts: a storm of votes or joins becomes a few messages a
second. Each process flushes what its own handlers changed; the values sent
are read fresh from Redis, so any process's flush is correct.
"""

import logging
from collections import defaultdict
from typing import Any

from kernel.events import Event, to_room, to_staff
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
    """Joins and leaves per room since the last flush, sent as one delta.

    A large room (more than `big_room` people) does not list its plain
    listeners to everyone: the room's delta names only notable people (staff,
    stage, raised hands) and always carries `counts`; a delta that would only
    change the counts goes out at most every `big_room_every_s` per room from
    this process. Staff still get every join and leave (their audience list
    offers anyone a stage invite), as a full delta to the staff channel.
    Small rooms get the full delta, as always. docs/protocol.md
    "Presence in large rooms".
    """

    def __init__(
        self, store: RoomStore, big_room: int = 500, big_room_every_s: float = 2.0
    ) -> None:
        self.store = store
        self.big_room = big_room
        self.big_room_every_s = big_room_every_s
        self._joined: dict[str, dict[str, Participant]] = defaultdict(dict)
        self._left: dict[str, dict[str, bool]] = defaultdict(dict)  # identity -> notable
        # Large rooms: plain joins and leaves not yet told as counts, and when
        # this process last sent the room its counts.
        self._counts_due: set[str] = set()
        self._counts_sent: dict[str, float] = {}

    def joined(self, room: str, person: Participant) -> None:
        self._left[room].pop(person.identity, None)
        self._joined[room][person.identity] = person

    def left(self, room: str, identity: str, notable: bool = False) -> None:
        self._joined[room].pop(identity, None)
        self._left[room][identity] = notable

    async def flush(self, now: float) -> list[Event]:
        joined, self._joined = self._joined, defaultdict(dict)
        left, self._left = self._left, defaultdict(dict)
        events = []
        for room in sorted(set(joined) | set(left) | self._counts_due):
            came, went = joined.get(room, {}), left.get(room, {})
            if not came and not went and room not in self._counts_due:
                continue
            counts = await presence.counts(self.store, room)
            full = _delta(list(came.values()), sorted(went), counts, now)
            if counts["total"] <= self.big_room:
                if came or went or room in self._counts_due:  # (owed counts of a large room)
                    events.append(to_room(room, PRESENCE_UPDATED, full))
                self._counts_due.discard(room)
                continue
            if came or went:
                events.append(to_staff(room, PRESENCE_UPDATED, full))
            notable_came = [p for p in came.values() if presence.is_notable(p)]
            notable_went = sorted(i for i, notable in went.items() if notable)
            if len(notable_came) < len(came) or len(notable_went) < len(went):
                self._counts_due.add(room)
            if notable_came or notable_went:
                delta = _delta(notable_came, notable_went, counts, now)
            elif room in self._counts_due and self._counts_may_go(room, now):
                delta = _delta([], [], counts, now)
            else:
                continue
            events.append(to_room(room, PRESENCE_UPDATED, delta))
            self._counts_due.discard(room)
            self._counts_sent[room] = now
        self._forget_quiet_rooms(now)
        return events

    def _counts_may_go(self, room: str, now: float) -> bool:
        sent = self._counts_sent.get(room)
        return sent is None or now - sent >= self.big_room_every_s

    def _forget_quiet_rooms(self, now: float) -> None:
        for room, sent in list(self._counts_sent.items()):
            if room not in self._counts_due and now - sent >= self.big_room_every_s:
                del self._counts_sent[room]


def _delta(
    joined: list[Participant], left: list[str], counts: dict[str, int], now: float
) -> dict[str, Any]:
    return {
        "joined": [p.to_wire() for p in joined],
        "left": left,
        "counts": counts,
        "server_time": now,
    }
