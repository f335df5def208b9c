"""Invite links for a room's team: `POST /api/v1/rooms/{room}/tokens`
mints one (the owner or the admin), `GET` lists the room's unexpired
invites (never a token), `DELETE .../tokens/{id}` revokes one and closes
its connections. The rules are rooms.invites'; refusing revoked tokens is
server.revoked_tokens'."""

import logging

from aiohttp import web

from accounts import identities
from kernel import validate as v
from kernel.errors import NotFound
from rooms import invites as rules
from server import tokens
from server.appkeys import SCHEDULER, SETTINGS
from server.errors import read_json
from server.owners import require_room_owner
from server.revoked_tokens import close_sockets, invites

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.post("/api/v1/rooms/{room}/tokens")
async def mint_invite(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    await require_room_owner(request, room_id)
    settings = request.app[SETTINGS]
    req = rules.parse_request(await read_json(request), settings.invite_ttl_s)
    identities.check_mintable(req.identity)
    now = request.app[SCHEDULER].clock()
    invite = rules.invite_for(req, now)
    token = tokens.mint(
        settings.secret,
        room=room_id,
        identity=invite.identity,
        role=req.role,
        name=invite.name,
        ttl_s=req.ttl_s,
        now=now,
        jti=invite.id,
    )
    await invites(request.app).add(room_id, invite)
    logger.info("room %s: invite %s minted (%s)", room_id, invite.id, invite.role)
    body = {
        "token": token,
        "id": invite.id,
        "identity": invite.identity,
        "name": invite.name,
        "role": invite.role,
        "expires_at": invite.expires_at,
        "url": rules.link(settings.public_url, room_id, req.role, token),
    }
    return web.json_response(body, status=201)


@routes.get("/api/v1/rooms/{room}/tokens")
async def list_invites(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    await require_room_owner(request, room_id)
    found = await invites(request.app).listed(room_id, request.app[SCHEDULER].clock())
    return web.json_response({"tokens": [i.as_dict() for i in found]})


@routes.delete("/api/v1/rooms/{room}/tokens/{id}")
async def revoke_invite(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    await require_room_owner(request, room_id)
    invite_id = v.ident(request.match_info, "id")
    now = request.app[SCHEDULER].clock()
    invite = await invites(request.app).revoke(room_id, invite_id, now)
    if invite is None:
        raise NotFound("this room has no such invite (or it has expired)")
    closed = await close_sockets(request.app, room_id, invite_id)
    logger.info("room %s: invite %s revoked (%d connections closed)", room_id, invite_id, closed)
    return web.json_response({"token": invite.as_dict(), "closed": closed})
