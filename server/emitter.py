"""Delivers domain events over Socket.IO: to a room, or to one identity's
connections in a room. Every connection joins both Socket.IO rooms on connect.

Features may also listen to what goes out (`listeners`: e.g. a receipt mail
when an order is announced paid) without touching the code that decided it;
a failing listener is logged and never stops the delivery.
"""

import logging
from collections.abc import Awaitable, Callable, Iterable

import socketio

from kernel.events import Audience, Event

logger = logging.getLogger(__name__)


def room_channel(room: str) -> str:
    return "r:" + room


def identity_channel(room: str, identity: str) -> str:
    return f"i:{room}|{identity}"


def staff_channel(room: str) -> str:
    return "s:" + room


def account_channel(account_id: str) -> str:
    """Every connection of a signed-in account, in every room (sign-out)."""
    return "a:" + account_id


def channel(event: Event) -> str:
    if event.audience is Audience.IDENTITY and event.identity is not None:
        return identity_channel(event.room, event.identity)
    if event.audience is Audience.STAFF:
        return staff_channel(event.room)
    return room_channel(event.room)


Listener = Callable[[Event], Awaitable[None]]


class Emitter:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self.listeners: list[Listener] = []

    async def emit(self, events: Iterable[Event]) -> None:
        for event in events:
            await self.sio.emit(event.name, event.payload, room=channel(event))
            for listener in self.listeners:
                await self._tell(listener, event)

    async def _tell(self, listener: Listener, event: Event) -> None:
        try:
            await listener(event)
        except Exception:
            logger.exception("listener of %s in room %s failed", event.name, event.room)
