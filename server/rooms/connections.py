"""Socket.IO connections: token check on connect, the snapshot, presence,
the stage people leave with their last connection, the end of a connection
whose token expires, and this node's heartbeat so other nodes can sweep its
connections if it dies.
"""

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import socketio
from aiohttp import web
from redis.exceptions import RedisError

from accounts import identities
from kernel.errors import Code, DomainError, Unauthorized
from rooms import presence, stage
from rooms.events import ROOM_STATE, SESSION_EXPIRED
from rooms.model import Participant
from server import revoked_tokens, tokens
from server.appkeys import ACCOUNTS, EMITTER, ROOMS, SCHEDULER, SETTINGS, SIO, STAGE_LISTENERS
from server.buyers import check_not_signed_out
from server.emitter import account_channel, identity_channel, room_channel, staff_channel
from server.errors import OUTAGE, STORE_DOWN_MESSAGE
from server.metrics import METRICS
from server.outage import STORE_DOWN
from server.roles import Claims, Role
from server.rooms import snapshot
from server.rooms.coalesce import PresenceBroadcaster, TallyBroadcaster

logger = logging.getLogger(__name__)

NODE_ID: web.AppKey[str] = web.AppKey("node_id", str)
TALLIES: web.AppKey[TallyBroadcaster] = web.AppKey("tallies", TallyBroadcaster)
PRESENCE: web.AppKey[PresenceBroadcaster] = web.AppKey("presence", PresenceBroadcaster)

HEARTBEAT_S, SWEEP_S = 5.0, 15.0  # rooms.presence.NODE_TTL_S: 15
TALLY_FLUSH_S, PRESENCE_FLUSH_S = 0.25, 0.5


def _token_of(auth: Any, environ: dict[str, Any]) -> Any:
    if isinstance(auth, dict) and auth.get("token"):
        return auth["token"]
    query = environ.get("QUERY_STRING", "")
    for part in query.split("&"):
        if part.startswith("token="):
            return part[6:]
    return None


def _refuse(code: str, message: str) -> socketio.exceptions.ConnectionRefusedError:
    # The error packet is {"message", "data"}: JS clients read `err.data.code`.
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code, "message": message})


async def tell_stage_listeners(app: web.Application, room: str, person: Participant) -> None:
    """The audio path acts on every change of the stage."""
    for listener in app[STAGE_LISTENERS]:
        await listener(room, person.identity, person.on_stage, person.muted)


async def announce_departure(app: web.Application, room: str, gone: presence.Departure) -> None:
    """Someone's last connection closed: they left the stage, their hand is down."""
    events = await stage.departure_events(app[ROOMS], room, gone)
    await app[EMITTER].emit(events)
    if gone.person is not None and gone.stage_change == "stage":
        await tell_stage_listeners(app, room, gone.person)


async def _check_not_revoked(app: web.Application, claims: Claims) -> None:
    if claims.stage_gen is None:
        return
    claims.check_not_revoked(await app[ROOMS].get_participant(claims.room, claims.identity))


class Connections:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.sio: socketio.AsyncServer = app[SIO]
        self._pending: set[asyncio.Task[None]] = set()
        # sid -> the timer that ends the connection when its token expires
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        app = self.app
        try:
            claims = tokens.verify(app[SETTINGS].secret, _token_of(auth, environ))
            if await app[ROOMS].get_room(claims.room) is None:
                raise Unauthorized("the token's room does not exist")
            await _check_not_revoked(app, claims)
            await check_not_signed_out(app, claims.identity, claims.gen)
            await revoked_tokens.note_and_check(app, claims, sid)
            arrival = await presence.join(
                app[ROOMS],
                claims.room,
                presence.session_field(app[NODE_ID], sid),
                claims.identity,
                claims.name,
                claims.role.label,
                app[SCHEDULER].clock(),
                token_exp=claims.exp,
            )
        except DomainError as exc:
            app[METRICS].refused.inc()
            code = "unauthorized" if exc.code is Code.NOT_FOUND else str(exc.code)
            raise _refuse(code, exc.message) from None
        except STORE_DOWN as exc:  # one log line per outage, not one per attempt
            app[OUTAGE].report(exc, "Socket.IO connect")
            raise _refuse("unavailable", STORE_DOWN_MESSAGE) from None
        except RedisError:
            logger.exception("connect to a room failed: Redis did not answer")
            raise _refuse("unavailable", "the server cannot reach its store; retry") from None
        await self.sio.save_session(sid, {"claims": claims})
        await self.sio.enter_room(sid, room_channel(claims.room))
        await self.sio.enter_room(sid, identity_channel(claims.room, claims.identity))
        if identities.is_account(claims.identity):  # closed at once on sign-out
            await self.sio.enter_room(sid, account_channel(claims.identity))
            await self._note_socket(claims.identity, sid)
        if claims.role.can(Role.MODERATOR):
            await self.sio.enter_room(sid, staff_channel(claims.room))
        await revoked_tokens.enter_channel(app, claims, sid)  # closed if its invite is revoked
        if arrival.joined:
            app[PRESENCE].joined(claims.room, arrival.person)
        app[METRICS].connections.inc()
        self._expire_at(sid, claims)
        # Sent once the connect handshake is answered, so every client sees it;
        # the task is kept until done (the loop holds tasks only weakly).
        self._spawn(self._after_connect(sid, claims, arrival))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _after_connect(self, sid: str, claims: Claims, arrival: presence.Arrival) -> None:
        try:
            state = await snapshot.build(self.app, claims, self.app[SCHEDULER].clock())
            await self.sio.emit(ROOM_STATE, state, to=sid)
            if arrival.staged:
                person = arrival.person
                await self.app[EMITTER].emit(
                    [await stage.stage_updated(self.app[ROOMS], claims.room, person)]
                )
                await tell_stage_listeners(self.app, claims.room, person)
        except Exception:
            logger.exception("room:state for %s in room %s failed", claims.identity, claims.room)

    def _expire_at(self, sid: str, claims: Claims) -> None:
        """One timer per connection (a heap entry of the loop: cheap at
        thousands) ends it when its token expires."""
        delay = max(0.0, claims.exp - self.app[SCHEDULER].clock())
        loop = asyncio.get_running_loop()
        self._expiry[sid] = loop.call_later(delay, lambda: self._spawn(self._expire(sid)))

    async def _expire(self, sid: str) -> None:
        self._expiry.pop(sid, None)
        message = "your access to this room has expired; join again with a new link"
        try:
            await self.sio.emit(
                SESSION_EXPIRED, {"code": "unauthorized", "message": message}, to=sid
            )
            await self.sio.disconnect(sid)
        except Exception:
            logger.exception("closing the expired connection %s failed", sid)

    async def _note_socket(self, account_id: str, sid: str) -> None:
        try:
            await self.app[ACCOUNTS].note_socket(account_id, sid)
        except RedisError:  # sign-out still closes it on this process (its channel)
            logger.warning("could not note connection %s of %s", sid, account_id)

    async def _forget_socket(self, account_id: str, sid: str) -> None:
        try:
            await self.app[ACCOUNTS].forget_socket(account_id, sid)
        except RedisError:  # a stale sid only costs a no-op at sign-out
            logger.warning("could not forget connection %s of %s", sid, account_id)

    async def on_disconnect(self, sid: str, *_: Any) -> None:
        timer = self._expiry.pop(sid, None)
        if timer is not None:
            timer.cancel()
        session = await self.sio.get_session(sid)
        claims: Claims | None = session.get("claims")
        if claims is None:
            return
        self.app[METRICS].connections.dec()
        if identities.is_account(claims.identity):
            await self._forget_socket(claims.identity, sid)
        field = presence.session_field(self.app[NODE_ID], sid)
        try:
            gone = await presence.leave(
                self.app[ROOMS], claims.room, field, claims.identity, self.app[SCHEDULER].clock()
            )
        except STORE_DOWN as exc:  # the node sweep closes it later
            self.app[OUTAGE].report(exc, "Socket.IO disconnect")
            return
        except RedisError:
            # The node sweep closes it later: the session field is still ours.
            logger.exception("leave of %s in room %s failed", claims.identity, claims.room)
            return
        if gone.left:
            self.app[PRESENCE].left(claims.room, claims.identity, gone.notable)
            await _announce_left(self.app, claims.room, gone)


async def _announce_left(app: web.Application, room: str, gone: presence.Departure) -> None:
    # The leave itself is done; an announcement that cannot go out (the store
    # or the relay gone, as while this node shuts down) must not stop a sweep
    # of the other connections. Whoever connects next reads the stage as is.
    try:
        await announce_departure(app, room, gone)
    except Exception as exc:
        logger.warning("could not announce that %s left room %s: %r", gone.identity, room, exc)


async def heartbeat(app: web.Application, now: float) -> None:
    await presence.heartbeat(app[ROOMS], app[NODE_ID], now)


async def sweep(app: web.Application, now: float, exclude_self: bool = False) -> None:
    """Close connections left behind by nodes that stopped heartbeating (the
    rule is rooms.presence.sweep) and announce who left."""
    exclude = app[NODE_ID] if exclude_self else None
    closed = await presence.sweep(app[ROOMS], now, exclude)
    for room_id in sorted({room_id for room_id, _ in closed}):
        n = sum(1 for r, _ in closed if r == room_id)
        logger.info("swept %d connections of dead nodes from room %s", n, room_id)
    for room_id, gone in closed:
        if gone.left:
            app[PRESENCE].left(room_id, gone.identity, gone.notable)
            await _announce_left(app, room_id, gone)


async def presence_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[ROOMS]
    app[TALLIES] = TallyBroadcaster(store)
    settings = app[SETTINGS]
    app[PRESENCE] = PresenceBroadcaster(store, settings.big_room, settings.big_room_presence_s)
    await heartbeat(app, app[SCHEDULER].clock())
    await sweep(app, app[SCHEDULER].clock())

    async def flush_tallies(now: float) -> None:
        await app[EMITTER].emit(await app[TALLIES].flush(now))

    async def flush_presence(now: float) -> None:
        await app[EMITTER].emit(await app[PRESENCE].flush(now))

    scheduler = app[SCHEDULER]
    scheduler.every(HEARTBEAT_S, lambda now: heartbeat(app, now))
    scheduler.every(SWEEP_S, lambda now: sweep(app, now))
    scheduler.every(TALLY_FLUSH_S, flush_tallies)
    scheduler.every(PRESENCE_FLUSH_S, flush_presence)
    yield
    # Leaving cleanly: this node's connections are closed in Redis now.
    await presence.node_gone(store, app[NODE_ID])
    await sweep(app, app[SCHEDULER].clock(), exclude_self=True)


def setup(app: web.Application) -> None:
    app[NODE_ID] = secrets.token_hex(4)
    handlers = Connections(app)
    app[SIO].on("connect", handlers.on_connect)
    app[SIO].on("disconnect", handlers.on_disconnect)
    app.cleanup_ctx.append(presence_ctx)
