"""Outgoing events: what a domain function says happened, addressed to an
audience. `server/` delivers them; domains never emit themselves."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Audience(StrEnum):
    ROOM = "room"  # everyone connected to the room
    IDENTITY = "identity"  # every connection of one identity in the room
    STAFF = "staff"  # every connection of a moderator or the host in the room


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    payload: dict[str, Any]
    room: str
    audience: Audience = Audience.ROOM
    identity: str | None = None


def to_room(room: str, name: str, payload: dict[str, Any]) -> Event:
    return Event(name, payload, room)


def to_staff(room: str, name: str, payload: dict[str, Any]) -> Event:
    return Event(name, payload, room, Audience.STAFF)


def to_identity(room: str, identity: str, name: str, payload: dict[str, Any]) -> Event:
    return Event(name, payload, room, Audience.IDENTITY, identity)
