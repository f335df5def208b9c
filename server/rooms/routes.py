"""HTTP routes of the rooms feature: tokens, rooms, guests and the event
log check. Errors answer in the protocol's JSON shape."""

from aiohttp import web

from accounts import identities
from kernel import validate as v
from kernel.errors import Forbidden, Invalid, NotFound
from kernel.eventlog import verify
from rooms import lifecycle, limits
from server import tokens
from server.appkeys import DISPATCHER, EMITTER, ROOMS, SCHEDULER, SETTINGS
from server.client_address import client_address
from server.errors import read_json
from server.http_auth import require_admin, require_token
from server.owners import listing_owner, require_actor, require_room_staff
from server.roles import Claims, Role
from server.rooms import snapshot

routes = web.RouteTableDef()

GUEST_TTL_S = 12 * 3600
DEFAULT_TTL_S = 12 * 3600


@routes.post("/api/v1/tokens")
async def mint_token(request: web.Request) -> web.Response:
    await require_admin(request)
    p = await read_json(request)
    room = v.ident(p, "room")
    identity = v.ident(p, "identity")
    identities.check_mintable(identity)
    name = v.opt_text(p, "name", max_len=80, default=identity)
    role = _role(p.get("role"))
    ttl = v.opt_integer(p, "ttl_s", lo=1, hi=tokens.MAX_TTL_S) or DEFAULT_TTL_S
    if await request.app[ROOMS].get_room(room) is None:
        raise NotFound("no such room")
    now = request.app[SCHEDULER].clock()
    token = tokens.mint(
        request.app[SETTINGS].secret,
        room=room,
        identity=identity,
        role=role,
        name=name or identity,
        ttl_s=ttl,
        now=now,
    )
    return web.json_response({"token": token, "expires_at": int(now + ttl)})


def _role(value: object) -> Role:
    try:
        return Role.parse(value)
    except ValueError:
        raise Invalid("role must be host, moderator, speaker or listener") from None


@routes.get("/api/v1/rooms")
async def list_rooms(request: web.Request) -> web.Response:
    """The lobby (anyone), or with `?owner=` a studio list (server.owners)."""
    owner = await listing_owner(request) if "owner" in request.query else None
    rooms = await lifecycle.list_rooms(request.app[ROOMS], owner=owner)
    return web.json_response({"rooms": [r.to_wire() for r in rooms]})


@routes.post("/api/v1/rooms")
async def create_room(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    room = await lifecycle.create(
        request.app[ROOMS], await read_json(request), request.app[SCHEDULER].clock(), actor.owner_id
    )
    return web.json_response(room.to_wire(), status=201)


@routes.get("/api/v1/rooms/{room}")
async def get_room(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    claims = require_token(request, room_id)
    if await request.app[ROOMS].get_room(room_id) is None:
        raise NotFound("no such room")
    return web.json_response(
        await snapshot.build(request.app, claims, request.app[SCHEDULER].clock())
    )


@routes.patch("/api/v1/rooms/{room}")
async def update_room(request: web.Request) -> web.Response:
    """The admin key, the owner's account token, or a host's room token."""
    room_id = request.match_info["room"]
    who, _ = await require_room_staff(request, room_id, Role.HOST)
    by = who.identity if isinstance(who, Claims) else who.owner_id
    body = await read_json(request)
    room, events = await lifecycle.update(
        request.app[ROOMS], room_id, body, request.app[SCHEDULER].clock(), by
    )
    request.app[DISPATCHER].forget_room(room_id)
    await request.app[EMITTER].emit(events)
    return web.json_response(room.to_wire())


@routes.post("/api/v1/rooms/{room}/guest")
async def guest_token(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    p = await read_json(request)
    name = v.text(p, "name", max_len=40)
    room = await request.app[ROOMS].get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    if not room.guests:
        raise Forbidden("this room does not allow guests")
    await limits.check_guest(request.app[ROOMS], client_address(request))
    identity = identities.new_guest_id()
    token = tokens.mint(
        request.app[SETTINGS].secret,
        room=room_id,
        identity=identity,
        role=Role.LISTENER,
        name=name,
        ttl_s=GUEST_TTL_S,
        now=request.app[SCHEDULER].clock(),
    )
    return web.json_response({"token": token, "identity": identity}, status=201)


@routes.get("/api/v1/rooms/{room}/log/verify")
async def verify_log(request: web.Request) -> web.Response:
    await require_admin(request)
    room_id = request.match_info["room"]
    store = request.app[ROOMS]
    verdict = verify([entry async for entry in store.log_entries(room_id)])
    return web.json_response(
        {
            "ok": verdict.ok,
            "checked": verdict.checked,
            "bad_entry": verdict.bad_entry,
            "reason": verdict.reason,
        }
    )


def setup(app: web.Application) -> None:
    app.add_routes(routes)
