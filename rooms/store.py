"""The room store: runs the room's Lua scripts and reads room state.

It owns the Redis connection the room domain uses (text responses) and the
registered scripts. Concept modules (`polls`, `qa`, `stage`...) build keys
and call `run`. Must not import any framework.
"""

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from kernel.errors import DomainError, Invalid, from_code
from kernel.eventlog import Entry
from rooms import keys, scripts
from rooms.model import Participant, Room

_SCRIPTS = {
    name: getattr(scripts, name)
    for name in (
        "JOIN",
        "LEAVE",
        "STAGE",
        "POLL_CREATE",
        "POLL_VOTE",
        "POLL_CLOSE",
        "QA_ASK",
        "QA_UPVOTE",
        "QA_ANSWER",
        "CHAT",
        "ROOM_CREATE",
        "ROOM_UPDATE",
        "RATE",
    )
}


def as_domain_error(exc: ResponseError) -> DomainError | None:
    """A script's `DR <code> <message>` refusal as our error, else None."""
    text = str(exc)
    if not text.startswith("DR "):
        return None
    _, code, message = [*text.split(" ", 2), "", ""][:3]
    return from_code(code, message)


class RoomStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        # Text responses (decode_responses=True); redis-py's types cannot say so.
        self.redis: Any = redis
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(src) for name, src in _SCRIPTS.items()
        }

    async def run(self, script: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script; its refusal becomes the matching DomainError."""
        try:
            return await self._scripts[script](keys=list(keys_), args=list(args))
        except UnicodeEncodeError:
            # A lone surrogate ("\ud800") decodes from JSON but is not UTF-8:
            # refused before anything reaches Redis.
            raise Invalid("text must be valid Unicode (no lone surrogates)") from None
        except ResponseError as exc:
            error = as_domain_error(exc)
            if error is None:
                raise
            raise error from None

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
        start = "-"
        while True:
            rows = await self.redis.xrange(keys.log(room_id), min=start, count=batch)
            for entry_id, f in rows:
                yield Entry(entry_id, f["type"], f["data"], f["ts"], f["prev"], f["hash"])
            if len(rows) < batch:
                return
            start = "(" + rows[-1][0]

    async def log_length(self, room_id: str) -> int:
        return int(await self.redis.xlen(keys.log(room_id)))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
