"""The room store: runs the room's Lua scripts and reads room state.

It owns the Redis connection the room domain uses (text responses) and the
registry of its scripts (`rooms/lua/*.lua`, through `kernel.lua.Scripts`).
Concept modules (`polls`, `qa`, `stage`...) build keys and call `run`.
Must not import any framework.
"""

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis

from kernel.eventlog import Entry
from kernel.lua import Scripts
from rooms import keys
from rooms.model import Participant, Room


class RoomStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        # Text responses (decode_responses=True); redis-py's types cannot say so.
        self.redis: Any = redis
        self.scripts = Scripts(redis)

    async def run(self, script: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        """Run script `script` ("rooms/<name>", rooms/lua/<name>.lua); its
        refusal becomes the matching DomainError."""
        return await self.scripts.run(script, keys_, args)

    async def get_room(self, room_id: str) -> Room | None:
        h = await self.redis.hgetall(keys.room(room_id))
        return Room.from_hash(h) if h else None

    async def get_participant(self, room_id: str, identity: str) -> Participant | None:
        raw = await self.redis.hget(keys.people(room_id), identity)
        return Participant.from_json(raw) if raw else None

    async def participants(self, room_id: str, identities: Sequence[str]) -> list[Participant]:
        if not identities:
            return []
        raws = await self.redis.hmget(keys.people(room_id), list(identities))
        return [Participant.from_json(raw) for raw in raws if raw]

    async def is_online(self, room_id: str, identity: str) -> bool:
        return bool(await self.redis.hexists(keys.online(room_id), identity))

    async def log_entries(self, room_id: str, batch: int = 1000) -> AsyncIterator[Entry]:
        """Every entry of the room's event log, oldest first."""
        async for entry in self._log_range(room_id, "-", "+", batch):
            yield entry

    async def log_between(
        self, room_id: str, start_s: float, end_s: float, batch: int = 1000
    ) -> AsyncIterator[Entry]:
        """The entries appended between two times (Unix s), oldest first: the
        stream ids are Redis's ms timestamps, so XRANGE reads only those."""
        start, end = str(int(start_s * 1000)), str(int(end_s * 1000))
        async for entry in self._log_range(room_id, start, end, batch):
            yield entry

    async def _log_range(
        self, room_id: str, start: str, end: str, batch: int
    ) -> AsyncIterator[Entry]:
        while True:
            rows = await self.redis.xrange(keys.log(room_id), min=start, max=end, count=batch)
            for entry_id, f in rows:
                yield Entry(entry_id, f["type"], f["data"], f["ts"], f["prev"], f["hash"])
            if len(rows) < batch:
                return
            start = "(" + rows[-1][0]

    async def log_length(self, room_id: str) -> int:
        return int(await self.redis.xlen(keys.log(room_id)))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
