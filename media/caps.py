"""Session caps: how many WHEP sessions one identity, one room and the whole
process may hold at once, and the refusals counted by scope.

A slot is taken before the offer is negotiated (so concurrent offers cannot
all slip under the cap while the first is still answering) and given back
when the session closes or its negotiation fails. Values and counters only;
must not import aiortc, aiohttp or `server/`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from kernel.errors import RateLimited

K = TypeVar("K")


class Scope(StrEnum):
    IDENTITY = "identity"
    ROOM = "room"
    PROCESS = "process"


@dataclass(frozen=True, slots=True)
class Limits:
    per_identity: int = 3
    per_room: int = 1000
    per_process: int = 1000

    def __post_init__(self) -> None:
        if min(self.per_identity, self.per_room, self.per_process) < 1:
            raise ValueError("session caps must be at least 1")


@dataclass
class SessionCaps:
    """Counts held slots; `take` refuses beyond a limit, `give_back` frees."""

    limits: Limits
    by_identity: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_room: Counter[str] = field(default_factory=Counter)
    total: int = 0
    refused: Counter[Scope] = field(default_factory=Counter)

    def full_scope(self, room: str, identity: str) -> Scope | None:
        if self.by_identity[(room, identity)] >= self.limits.per_identity:
            return Scope.IDENTITY
        if self.by_room[room] >= self.limits.per_room:
            return Scope.ROOM
        if self.total >= self.limits.per_process:
            return Scope.PROCESS
        return None

    def take(self, room: str, identity: str) -> None:
        scope = self.full_scope(room, identity)
        if scope is not None:
            self.refused[scope] += 1
            raise RateLimited(_MESSAGES[scope])
        self.by_identity[(room, identity)] += 1
        self.by_room[room] += 1
        self.total += 1

    def give_back(self, room: str, identity: str) -> None:
        key = (room, identity)
        if self.by_identity[key] <= 0:
            return
        _decrement(self.by_identity, key)
        _decrement(self.by_room, room)
        self.total -= 1


def _decrement(counter: Counter[K], key: K) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


_MESSAGES = {
    Scope.IDENTITY: "too many listening sessions for this identity; close one first",
    Scope.ROOM: "this room has as many listeners as it can take; try again later",
    Scope.PROCESS: "this server has as many listeners as it can take; try again later",
}
