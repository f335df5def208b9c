"""Socket.IO event dispatch: one handler per event, whose return value is the
client's ack. The dispatcher checks the caller's role, that the payload is an
object and that the room's module is on, then calls the handler; our coded
errors become `{"ok": false, "error": ...}`; anything else is logged and
answered `unavailable`, so no input crashes a handler.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web

from kernel.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthorized,
    Unavailable,
)
from kernel.events import Event
from kernel.validate import as_payload
from rooms.model import Room
from server.appkeys import EMITTER, ROOMS, SCHEDULER
from server.errors import OUTAGE, STORE_DOWN_MESSAGE, nack
from server.metrics import METRICS
from server.outage import STORE_DOWN
from server.roles import Claims, Role
from server.sio_packets import UNREADABLE, read_defensively

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ctx:
    app: web.Application
    sid: str
    claims: Claims
    now: float

    @property
    def room(self) -> str:
        return self.claims.room

    @property
    def identity(self) -> str:
        return self.claims.identity

    async def emit(self, events: Iterable[Event]) -> None:
        await self.app[EMITTER].emit(events)


Handler = Callable[[Ctx, Mapping[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Route:
    event: str
    handler: Handler
    role: Role
    module: str | None


# How long a node trusts its copy of a room's settings (modules) before it
# reads them again: the module check would otherwise cost every event a Redis
# round trip. A change made on this node is seen at once; on other nodes
# within this time.
ROOM_CACHE_S = 1.0


class Dispatcher:
    def __init__(self, app: web.Application, sio: socketio.AsyncServer) -> None:
        self.app = app
        self.sio = sio
        self.routes: dict[str, Route] = {}
        self._rooms: dict[str, tuple[float, asyncio.Future[Room | None]]] = {}
        read_defensively(sio)
        sio.on(UNREADABLE, self.on_unreadable)

    async def on_unreadable(self, sid: str, reason: object = None) -> dict[str, Any]:
        """A packet that could not be read (sio_packets.GuardedPacket)."""
        self.app[METRICS].events.labels("unreadable", "invalid").inc()
        return nack(Invalid(f"the message could not be read: {reason}"))

    def add(
        self, event: str, handler: Handler, *, role: Role = Role.LISTENER, module: str | None = None
    ) -> None:
        if event in self.routes:
            raise ValueError(f"{event} already has a handler")
        route = Route(event, handler, role, module)
        self.routes[event] = route

        async def on_event(sid: str, *args: Any) -> dict[str, Any]:
            return await self.dispatch(route, sid, args[0] if args else None)

        self.sio.on(event, on_event)

    async def dispatch(self, route: Route, sid: str, payload: object) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            answer = {"ok": True, **await self._checked(route, sid, payload)}
            outcome = "ok"
        except DomainError as exc:
            answer, outcome = nack(exc), str(exc.code)
        except STORE_DOWN as exc:
            self.app[OUTAGE].report(exc, route.event)
            answer, outcome = nack(Unavailable(STORE_DOWN_MESSAGE)), "unavailable"
        except Exception:
            logger.exception("handler for %s failed (sid %s)", route.event, sid)
            answer, outcome = nack(Unavailable("the server could not do that now")), "error"
        metrics = self.app[METRICS]
        metrics.events.labels(route.event, outcome).inc()
        metrics.event_seconds.labels(route.event).observe(time.perf_counter() - started)
        return answer

    async def _checked(self, route: Route, sid: str, payload: object) -> dict[str, Any]:
        session = await self.sio.get_session(sid)
        claims: Claims | None = session.get("claims")
        if claims is None:
            raise Unauthorized("not connected to a room")
        now = self.app[SCHEDULER].clock()
        if claims.exp < now:
            raise Unauthorized("the token has expired; reconnect with a new one")
        if not claims.role.can(route.role):
            raise Forbidden(f"{route.event} needs the {route.role.label} role or above")
        body = as_payload(payload)
        if route.module is not None:
            await self._require_module(claims.room, route.module)
        return await route.handler(Ctx(self.app, sid, claims, now), body)

    def forget_room(self, room_id: str) -> None:
        """Its settings changed: read them again next time."""
        self._rooms.pop(room_id, None)

    async def _room(self, room_id: str, now: float) -> Room | None:
        """The room's settings; one read per node per ROOM_CACHE_S, shared by
        every event that arrives meanwhile (a drop opening sends thousands)."""
        cached = self._rooms.get(room_id)
        if cached is None or cached[0] <= now:
            loading = asyncio.ensure_future(self.app[ROOMS].get_room(room_id))
            cached = self._rooms[room_id] = (now + ROOM_CACHE_S, loading)
            loading.add_done_callback(lambda f: self._drop_failed(room_id, f))
        return await asyncio.shield(cached[1])

    def _drop_failed(self, room_id: str, loading: "asyncio.Future[Room | None]") -> None:
        entry = self._rooms.get(room_id)
        failed = loading.cancelled() or loading.exception() is not None
        if entry is not None and entry[1] is loading and (failed or loading.result() is None):
            del self._rooms[room_id]

    async def _require_module(self, room_id: str, module: str) -> None:
        room = await self._room(room_id, time.monotonic())
        if room is None:
            raise NotFound("no such room")
        if not room.has(module):
            raise Conflict(f"the {module} module is off in this room")
