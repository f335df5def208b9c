"""HTTP routes of a room's episodes, its calendar and its followers.

Episodes change through the room's staff (the admin, the owner, or a host
token of the room: `require_room_staff`); anyone reads them and the
calendar; following needs a signed-in account's token. Rules in
`rooms.episodes`, `rooms.follows`, `rooms.calendar`; the mails to
followers are the accounts feature's (server/accounts/reminders.py).
"""

from aiohttp import web

from kernel.errors import NotFound
from kernel.events import Event
from rooms import calendar, episodes, follows
from rooms.episodes import Due
from server.appkeys import DISPATCHER, EMITTER, ROOMS, SCHEDULER, SETTINGS
from server.buyers import verified_account
from server.errors import read_json
from server.owners import require_room_staff

routes = web.RouteTableDef()

ICS_TYPE = "text/calendar"
SWEEP_S = 1.0


def room_url(app: web.Application, room_id: str) -> str:
    return f"{app[SETTINGS].public_url}/r/{room_id}"


async def _changed(request: web.Request, room_id: str, events: list[Event]) -> None:
    request.app[DISPATCHER].forget_room(room_id)
    await request.app[EMITTER].emit(events)


@routes.get("/api/v1/rooms/{room}/episodes")
async def list_episodes(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    store = request.app[ROOMS]
    if await store.get_room(room_id) is None:
        raise NotFound("no such room")
    upcoming = await episodes.upcoming(store, room_id, request.app[SCHEDULER].clock())
    return web.json_response({"episodes": [ep.to_wire() for ep in upcoming]})


@routes.post("/api/v1/rooms/{room}/episodes")
async def create_episode(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    await require_room_staff(request, room_id)
    app = request.app
    ep, events = await episodes.create(
        app[ROOMS],
        room_id,
        await read_json(request),
        app[SCHEDULER].clock(),
        app[SETTINGS].reminder_lead_s,
    )
    await _changed(request, room_id, events)
    return web.json_response({"episode": ep.to_wire()}, status=201)


@routes.patch("/api/v1/rooms/{room}/episodes/{episode}")
async def update_episode(request: web.Request) -> web.Response:
    room_id, episode_id = request.match_info["room"], request.match_info["episode"]
    await require_room_staff(request, room_id)
    app = request.app
    ep, events = await episodes.update(
        app[ROOMS],
        room_id,
        episode_id,
        await read_json(request),
        app[SCHEDULER].clock(),
        app[SETTINGS].reminder_lead_s,
    )
    await _changed(request, room_id, events)
    return web.json_response({"episode": ep.to_wire()})


@routes.delete("/api/v1/rooms/{room}/episodes/{episode}")
async def delete_episode(request: web.Request) -> web.Response:
    room_id, episode_id = request.match_info["room"], request.match_info["episode"]
    await require_room_staff(request, room_id)
    events = await episodes.delete(
        request.app[ROOMS], room_id, episode_id, request.app[SCHEDULER].clock()
    )
    await _changed(request, room_id, events)
    return web.json_response({"deleted": episode_id})


@routes.get("/api/v1/rooms/{room}/calendar.ics")
async def room_calendar(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    store, now = request.app[ROOMS], request.app[SCHEDULER].clock()
    room = await store.get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    upcoming = await episodes.upcoming(store, room_id, now)
    body = calendar.ics(room, upcoming, room_url(request.app, room_id), now)
    return web.Response(
        body=body,
        content_type=ICS_TYPE,
        charset="utf-8",
        headers={
            "Content-Disposition": f'inline; filename="{room_id}.ics"',
            "Cache-Control": "public, max-age=300",
        },
    )


@routes.post("/api/v1/rooms/{room}/follow")
async def follow_room(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    claims = await verified_account(request)
    await follows.follow(request.app[ROOMS], room_id, claims.account_id)
    return web.json_response({"room": room_id, "following": True})


@routes.get("/api/v1/rooms/{room}/follow")
async def following(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    claims = await verified_account(request)
    if await request.app[ROOMS].get_room(room_id) is None:
        raise NotFound("no such room")
    yes = await follows.is_following(request.app[ROOMS], room_id, claims.account_id)
    return web.json_response({"room": room_id, "following": yes})


@routes.delete("/api/v1/rooms/{room}/follow")
async def unfollow_room(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    claims = await verified_account(request)
    await follows.unfollow(request.app[ROOMS], room_id, claims.account_id)
    return web.json_response({"room": room_id, "following": False})


@routes.get("/api/v1/me/follows")
async def my_follows(request: web.Request) -> web.Response:
    claims = await verified_account(request)
    rooms = await follows.followed(request.app[ROOMS], claims.account_id)
    return web.json_response({"rooms": [room.to_wire() for room in rooms]})


async def end_sweep(app: web.Application, now: float) -> None:
    """Episodes that ended leave their room's list (a `room:updated`)."""
    store = app[ROOMS]
    for item in await episodes.due(store, Due.END, now):
        await app[EMITTER].emit(await episodes.refresh(store, item.room, now))
        await episodes.done(store, item)


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app[SCHEDULER].every(SWEEP_S, lambda now: end_sweep(app, now))
