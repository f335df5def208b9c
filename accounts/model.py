"""An account as stored and as answered. Must not import any framework."""

from dataclasses import dataclass
from typing import Any

CREATOR = "creator"
ROLES = frozenset({CREATOR})
MAX_NAME = 40


def default_name(account_id: str) -> str:
    """Neutral until the person picks one: account data is never broadcast."""
    return "Listener " + account_id[-4:]


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    name: str
    roles: frozenset[str]
    gen: int
    created_at: float

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> "Account":
        roles = frozenset(r for r in h.get("roles", "").split(",") if r)
        return cls(
            h["id"],
            h["email"],
            h.get("name") or default_name(h["id"]),
            roles,
            int(h.get("gen") or 0),
            float(h.get("created_at") or 0),
        )

    @property
    def is_creator(self) -> bool:
        return CREATOR in self.roles

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "roles": sorted(self.roles),
        }
