"""Replays at the edge: `GET /api/v1/rooms/{room}/replays` lists a room's
recordings, each with its shoppable moments (the pins, drops and polls of
the event log at their offset, `rooms.moments`), and
`GET /api/v1/rooms/{room}/replays/{name}` serves a recording with range
requests.

A listed `url` is absolute and signed for that one recording
(`?exp=&sig=`, HMAC-SHA256 with the server secret): an `<audio>` element
plays it without a header, and no access token lands in a request line.
The file route still takes a room token (`Authorization` or `?token=`).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from commerce.catalog import Catalog
from commerce.drop_store import DropStore
from kernel.errors import Forbidden, NotFound
from media.recording import Replay
from rooms.moments import LOG_SLACK_S, Moment, Window, drop_ids, moment_view, moments, product_ids
from server.appkeys import REDIS, ROOMS, SCHEDULER, SETTINGS
from server.audio.routes import MEDIA
from server.http_auth import require_token

routes = web.RouteTableDef()

LINK_TTL_S = 6 * 3600
_HOUR_S = 3600


def link_signature(secret: str, room: str, name: str, exp: int) -> str:
    message = f"replay\n{room}\n{name}\n{exp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def signed_url(app: web.Application, room: str, name: str, now: float) -> str:
    """The recording's link, good for at least `LINK_TTL_S`; the same URL
    for a whole hour, so players and caches keep what they fetched."""
    settings = app[SETTINGS]
    exp = (int(now) // _HOUR_S + 1) * _HOUR_S + LINK_TTL_S
    query = urlencode({"exp": exp, "sig": link_signature(settings.secret, room, name, exp)})
    return f"{settings.public_url}/api/v1/rooms/{quote(room, safe='')}/replays/{name}?{query}"


def _check_link(request: web.Request, room: str, name: str) -> None:
    sig = request.query.get("sig")
    if sig is None:
        require_token(request, room)  # `Authorization` or `?token=`
        return
    try:
        exp = int(request.query.get("exp", ""))
    except ValueError:
        raise Forbidden("the replay link is not valid") from None
    expected = link_signature(request.app[SETTINGS].secret, room, name, exp)
    if not hmac.compare_digest(sig.encode(), expected.encode()):
        raise Forbidden("the replay link is not valid")
    if exp < request.app[SCHEDULER].clock():
        raise Forbidden("the replay link has expired: list the replays again for a fresh one")


async def _facts(
    app: web.Application, room: str, found: list[Moment], now: float
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What the moments show, read now: their drops, then every product."""
    catalog = Catalog(app[REDIS])
    store = DropStore(app[REDIS], catalog)
    drops: dict[str, dict[str, Any]] = {}
    for drop_id in sorted(drop_ids(found)):
        try:
            drops[drop_id] = (await store.get(room, drop_id)).as_dict(now)
        except NotFound:
            continue
    wanted = product_ids(found) | {str(d["product_id"]) for d in drops.values()}
    products: dict[str, dict[str, Any]] = {}
    for product_id in sorted(wanted):
        product = await catalog.product(product_id)
        if product is not None:
            products[product_id] = product.as_dict()
    return products, drops


async def replay_view(
    app: web.Application, room: str, replay: Replay, now: float
) -> dict[str, Any]:
    """One recording as the list gives it, moments included."""
    window = Window(replay.started_at, replay.zero_at, replay.ended_at or now)
    start, end = window.opened_at - LOG_SLACK_S, window.end + LOG_SLACK_S
    entries = [e async for e in app[ROOMS].log_between(room, start, end)]
    found = moments(entries, window)
    products, drops = await _facts(app, room, found, now)
    views = [moment_view(m, products, drops) for m in found]
    duration = replay.duration_s if not replay.live else max(0.0, now - replay.zero_at)
    return {
        "id": replay.name,
        "url": signed_url(app, room, replay.name, now),
        "duration_s": round(duration or 0.0, 2),
        "started_at": replay.zero_at,  # the time offset 0 stands for
        "ended_at": replay.ended_at,
        "live": replay.live,
        "moments": [v for v in views if v is not None],
    }


@routes.get("/api/v1/rooms/{room}/replays")
async def on_replays(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    require_token(request, room)
    app = request.app
    now = app[SCHEDULER].clock()
    listed = [await replay_view(app, room, r, now) for r in app[MEDIA].replays(room, now)]
    return web.json_response({"replays": listed})


@routes.get("/api/v1/rooms/{room}/replays/{name}")
async def on_replay_file(request: web.Request) -> web.FileResponse:
    room, name = request.match_info["room"], request.match_info["name"]
    _check_link(request, room, name)
    path = request.app[MEDIA].replay_path(room, name)
    return web.FileResponse(path, headers={"Content-Type": "audio/ogg"})


def setup(app: web.Application) -> None:
    app.add_routes(routes)
