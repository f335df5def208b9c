"""Delivers domain events over Socket.IO: to a room, or to one identity's
connections in a room. Every connection joins both Socket.IO rooms on connect.
"""

import logging
from collections.abc import Iterable

import socketio

from kernel.events import Audience, Event

logger = logging.getLogger(__name__)


def room_channel(room: str) -> str:
    return "r:" + room


def identity_channel(room: str, identity: str) -> str:
    return f"i:{room}|{identity}"


def staff_channel(room: str) -> str:
    return "s:" + room


def channel(event: Event) -> str:
    if event.audience is Audience.IDENTITY and event.identity is not None:
        return identity_channel(event.room, event.identity)
    if event.audience is Audience.STAFF:
        return staff_channel(event.room)
    return room_channel(event.room)


class Emitter:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def emit(self, events: Iterable[Event]) -> None:
        for event in events:
            await self.sio.emit(event.name, event.payload, room=channel(event))
