"""The claims a token carries. `Role` lives in rooms.roles (imported here
so `from server.roles import Role` keeps working)."""

from dataclasses import dataclass

from kernel.errors import Unauthorized
from rooms.model import Participant
from rooms.roles import Role
from rooms.stage import is_revoked

__all__ = ["Claims", "Role"]


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
    # Set on room tokens from `/join`: the account's token generation
    # (server.buyers.check_not_signed_out).
    gen: int | None = None
    # Set on invite links' tokens: the invite's id (rooms.invites); a
    # revoked invite's token is refused (server.revoked_tokens).
    jti: str | None = None

    def check_not_revoked(self, person: Participant | None) -> None:
        """`Unauthorized` for a speaker token whose owner left the stage since."""
        if is_revoked(self.stage_gen, person):
            raise Unauthorized("this speaker token was revoked: you left the stage")
