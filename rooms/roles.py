"""Roles in a room and who may publish. Ordered: a role may do everything
the roles below it may do.

The Lua scripts rank roles with the table in `rooms/lua/ranks.lua`, which is
`lua_ranks()` written out (tests/test_rooms_rules.py checks they are equal;
`python -m rooms.roles` writes it again). Must not import any framework.
"""

from enum import IntEnum

from rooms.model import Participant


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


def can_publish(role: Role, person: Participant | None) -> bool:
    """The host always; speakers and moderators only while on the stage;
    listeners never."""
    if role is Role.HOST:
        return True
    return role.can(Role.SPEAKER) and person is not None and person.on_stage


RANKS_LUA = "rooms/lua/ranks.lua"


def lua_ranks() -> str:
    """The text of rooms/lua/ranks.lua: `RANK[label]` is the role's rank."""
    pairs = ", ".join(f"{role.label} = {int(role)}" for role in Role)
    return (
        "-- Generated from rooms.roles.Role by rooms.roles.lua_ranks(); "
        "tests/test_rooms_rules.py checks it.\n"
        f"local RANK = {{{pairs}}}\n"
    )


if __name__ == "__main__":
    from pathlib import Path

    Path(__file__).with_name("lua").joinpath("ranks.lua").write_text(lua_ranks(), encoding="utf-8")
