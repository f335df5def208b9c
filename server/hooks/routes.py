"""HTTP routes of outbound webhooks: a creator (or the admin) registers,
lists, deletes and rotates their endpoints and reads each one's delivery
log. Everything is looked up under the caller's own owner id, so another
creator's endpoint answers 404 (it is not theirs to know about)."""

import logging

from aiohttp import web

from accounts import hooks
from server.appkeys import SCHEDULER, SETTINGS
from server.errors import read_json
from server.hooks.resources import HOOK_QUEUE, HOOKS
from server.owners import require_actor

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.post("/api/v1/webhooks")
async def create(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    p = await read_json(request)
    url = hooks.check_url(p.get("url"), request.app[SETTINGS].webhook_allow_private)
    events = hooks.check_events(p.get("events"))
    now = request.app[SCHEDULER].clock()
    endpoint = hooks.Endpoint(hooks.new_id(), actor.owner_id, url, events, hooks.new_secret(), now)
    await request.app[HOOKS].add(endpoint)
    logger.info("webhook %s registered by %s for %s", endpoint.id, endpoint.owner, ",".join(events))
    return web.json_response(endpoint.as_dict() | {"secret": endpoint.secret}, status=201)


@routes.get("/api/v1/webhooks")
async def listing(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    found = await request.app[HOOKS].of(actor.owner_id)
    return web.json_response({"webhooks": [e.as_dict() for e in found]})


@routes.delete("/api/v1/webhooks/{id}")
async def delete(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    endpoint_id = request.match_info["id"]
    await request.app[HOOKS].remove(actor.owner_id, endpoint_id)
    await request.app[HOOK_QUEUE].forget(actor.owner_id, endpoint_id)
    logger.info("webhook %s deleted by %s", endpoint_id, actor.owner_id)
    return web.Response(status=204)


@routes.post("/api/v1/webhooks/{id}/rotate")
async def rotate(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    secret = hooks.new_secret()
    until = request.app[SCHEDULER].clock() + hooks.ROTATION_GRACE_S
    endpoint = await request.app[HOOKS].rotate(
        actor.owner_id, request.match_info["id"], secret, until
    )
    logger.info("webhook %s secret rotated by %s", endpoint.id, actor.owner_id)
    return web.json_response(endpoint.as_dict() | {"secret": endpoint.secret})


@routes.get("/api/v1/webhooks/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    endpoint = await request.app[HOOKS].require(actor.owner_id, request.match_info["id"])
    log = await request.app[HOOK_QUEUE].log(endpoint.owner, endpoint.id)
    return web.json_response({"deliveries": [d.as_dict() for d in log]})
