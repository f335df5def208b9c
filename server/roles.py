"""Roles and the claims a token carries. Ordered: a role may do everything
the roles below it may do."""

from dataclasses import dataclass
from enum import IntEnum

from kernel.errors import Unauthorized
from rooms.model import Participant
from rooms.stage import is_revoked


class Role(IntEnum):
    LISTENER = 1
    SPEAKER = 2
    MODERATOR = 3
    HOST = 4

    @classmethod
    def parse(cls, name: object) -> "Role":
        if not isinstance(name, str) or name.upper() not in cls.__members__:
            raise ValueError(f"unknown role {name!r}")
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()

    def can(self, least: "Role") -> bool:
        return self >= least


@dataclass(frozen=True, slots=True)
class Claims:
    identity: str
    name: str
    room: str
    role: Role
    exp: float
    # Set on speaker tokens minted by `stage:invite`: the stage generation
    # they belong to (rooms.stage.is_revoked).
    stage_gen: int | None = None

    def check_not_revoked(self, person: Participant | None) -> None:
        """`Unauthorized` for a speaker token whose owner left the stage since."""
        if is_revoked(self.stage_gen, person):
            raise Unauthorized("this speaker token was revoked: you left the stage")
