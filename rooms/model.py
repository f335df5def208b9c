"""Room values: rooms, participants, polls, questions, chat messages.

Frozen dataclasses with the wire shape of PROTOCOL.md in `to_wire()`.
Must not import any framework or another domain.
"""

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from kernel.owners import ADMIN_OWNER, owner_or_admin


class Module(StrEnum):
    POLLS = "polls"
    QA = "qa"
    CHAT = "chat"
    SHOP = "shop"


ALL_MODULES: tuple[Module, ...] = tuple(Module)


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    title: str
    modules: tuple[Module, ...]
    guests: bool
    live: bool
    created_at: float
    # the creator's account id, or ADMIN_OWNER (kernel.owners)
    owner: str = ADMIN_OWNER
    # the soonest upcoming episodes (rooms.episodes keeps them in the hash)
    episodes: tuple[dict[str, Any], ...] = ()

    def has(self, module: Module | str) -> bool:
        return module in self.modules

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "modules": [str(m) for m in self.modules],
            "guests": self.guests,
            "live": self.live,
            "created_at": self.created_at,
            "owner": self.owner,
            "episodes": list(self.episodes),
        }

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> "Room":
        return cls(
            id=h["id"],
            title=h["title"],
            modules=tuple(Module(m) for m in json.loads(h["modules"])),
            guests=h.get("guests") == "1",
            live=h.get("live") == "1",
            created_at=float(h.get("created_at") or 0),
            owner=owner_or_admin(h.get("owner")),
            episodes=tuple(json.loads(h.get("episodes") or "[]")),
        )


@dataclass(frozen=True, slots=True)
class Participant:
    identity: str
    name: str
    role: str
    on_stage: bool = False
    muted: bool = False
    hand_raised: bool = False
    # Kept in the record, never on the wire: when the identity's newest
    # token expires, and its stage generation (a speaker token minted for an
    # older generation is revoked: see rooms/stage.py).
    token_exp: float = 0.0
    stage_gen: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "name": self.name,
            "role": self.role,
            "on_stage": self.on_stage,
            "muted": self.muted,
            "hand_raised": self.hand_raised,
        }

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Participant":
        d = json.loads(raw)
        return cls(
            identity=d["identity"],
            name=d.get("name") or d["identity"],
            role=d.get("role") or "listener",
            on_stage=bool(d.get("on_stage")),
            muted=bool(d.get("muted")),
            hand_raised=bool(d.get("hand_raised")),
            token_exp=float(d.get("token_exp") or 0),
            stage_gen=int(d.get("stage_gen") or 0),
        )


class PollState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Poll:
    id: str
    question: str
    options: tuple[str, ...]
    tallies: tuple[int, ...]
    closed: bool
    closes_at: float | None
    created_at: float

    def state(self, now: float) -> PollState:
        """Derived: closed by a moderator, or by its own deadline."""
        if self.closed or (self.closes_at is not None and now >= self.closes_at):
            return PollState.CLOSED
        return PollState.OPEN

    def to_wire(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "options": list(self.options),
            "tallies": list(self.tallies),
            "votes": sum(self.tallies),
            "state": str(self.state(now)),
            "closes_at": self.closes_at,
            "created_at": self.created_at,
        }

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> "Poll":
        options = tuple(json.loads(h["options"]))
        closes_at = h.get("closes_at") or ""
        return cls(
            id=h["id"],
            question=h["question"],
            options=options,
            tallies=tuple(int(h.get(f"t{i}") or 0) for i in range(len(options))),
            closed=h.get("state") == PollState.CLOSED,
            closes_at=float(closes_at) if closes_at else None,
            created_at=float(h.get("created_at") or 0),
        )


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    author: str
    author_name: str
    votes: int
    answered: bool
    created_at: float

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> "Question":
        return cls(
            id=h["id"],
            text=h["text"],
            author=h["author"],
            author_name=h.get("author_name") or h["author"],
            votes=int(h.get("votes") or 0),
            answered=h.get("answered") == "1",
            created_at=float(h.get("created_at") or 0),
        )

    def sort_key(self) -> tuple[int, int, float]:
        """Open questions first, then most votes, then oldest."""
        return (int(self.answered), -self.votes, self.created_at)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    id: str
    text: str
    author: str
    author_name: str
    role: str
    ts: float

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)
