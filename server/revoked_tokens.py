"""Revoked invite links (rooms.invites): a token carrying the `jti` of a
revoked invite is refused everywhere a room token is taken.

The choke points: HTTP requests (every route, WHIP/WHEP and `?token=`
links included) pass `refuse_revoked` before any route runs, and Socket.IO
connects call `check_not_revoked`. Revoking closes the token's open
connections on whichever process holds them: they are told
(`session:expired`) through the invite's channel, and the sids noted in
Redis at connect are disconnected (the Socket.IO relay, server/relay, sends
a disconnect to the process that holds the sid).
"""

import logging

from aiohttp import web
from redis.exceptions import RedisError

from kernel.errors import Unauthorized
from rooms.events import SESSION_EXPIRED
from rooms.invites import Invites
from server import tokens
from server.appkeys import ROOMS, SCHEDULER, SIO
from server.errors import Handler
from server.http_auth import bearer
from server.roles import Claims

logger = logging.getLogger(__name__)

REVOKED = "this invite link was revoked; ask the room's owner for a new one"


def invites(app: web.Application) -> Invites:
    return Invites(app[ROOMS])


def invite_channel(room: str, invite_id: str) -> str:
    """Every connection made with one invite's token."""
    return f"t:{room}|{invite_id}"


@web.middleware
async def refuse_revoked(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bearer(request)
    if token and token.isascii():
        found = tokens.peek_invite(token)  # most tokens carry no jti: no lookup
        if found is not None and await invites(request.app).is_revoked(*found):
            raise Unauthorized(REVOKED)
    return await handler(request)


async def note_and_check(app: web.Application, claims: Claims, sid: str) -> None:
    """At connect, before the connection counts: refuse a revoked invite's
    token; else note the sid for the invite and look again. In this order a
    revocation either sees the sid (and closes it) or is seen here; a
    revoked token's attempts note nothing."""
    if claims.jti is None:
        return
    if await invites(app).is_revoked(claims.room, claims.jti):
        raise Unauthorized(REVOKED)
    now = app[SCHEDULER].clock()
    try:
        await invites(app).note_socket(claims.room, claims.jti, sid, claims.exp, now)
    except RedisError:  # revocation still closes it on this process (its channel)
        logger.warning("room %s: could not note connection %s of %s", claims.room, sid, claims.jti)
    if await invites(app).is_revoked(claims.room, claims.jti):
        raise Unauthorized(REVOKED)


async def enter_channel(app: web.Application, claims: Claims, sid: str) -> None:
    """The connection hears its invite's revocation (on this process)."""
    if claims.jti is not None:
        await app[SIO].enter_room(sid, invite_channel(claims.room, claims.jti))


async def close_sockets(app: web.Application, room: str, invite_id: str) -> int:
    """Tell every connection of the invite's token, then close them all."""
    sio = app[SIO]
    channel = invite_channel(room, invite_id)
    await sio.emit(SESSION_EXPIRED, {"code": "unauthorized", "message": REVOKED}, room=channel)
    here = {sid for sid, _ in sio.manager.get_participants("/", channel)}
    sids = here | set(await invites(app).take_sockets(room, invite_id))
    for sid in sorted(sids):
        await sio.disconnect(sid)
    return len(sids)
