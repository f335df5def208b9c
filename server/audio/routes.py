"""HTTP edge of the audio path: WHIP (publish) and WHEP (listen) per
RFC 9725, the recordings in the room state, and the hooks that tie the
media engine to the rooms (stage changes, snapshot parts, speaking levels).

Owns the `MEDIA` app key and its cleanup_ctx. Roles and stage come from the
rooms store; all audio work is in `media/`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from kernel.errors import Code, DomainError, Forbidden, Invalid, NotFound, RateLimited
from kernel.events import to_room
from media.caps import Limits
from media.certificate import write_p256_pair
from media.config import MediaConfig
from media.engine import MediaEngine
from media.ice import link_header
from media.session import Kind
from media.signaling import UnsupportedOffer
from media.trickle import IceRestart
from rooms import media_lease
from rooms.events import SPEAKING_UPDATED
from rooms.roles import can_publish
from server.appkeys import (
    EMITTER,
    HANDOFF,
    ROOMS,
    SCHEDULER,
    SETTINGS,
    SNAPSHOT_PARTS,
    STAGE_LISTENERS,
)
from server.audio import edges, live, tones
from server.audio.edges import EDGES
from server.audio.ownership import OWNERSHIP, Ownership, OwnershipMetrics
from server.config import Settings
from server.errors import error_body
from server.handoff import SEP, owner_of
from server.http_auth import require_token
from server.metrics import METRICS
from server.roles import Claims, Role

logger = logging.getLogger(__name__)

MEDIA: web.AppKey[MediaEngine] = web.AppKey("media", MediaEngine)
SDP = "application/sdp"
MAX_SDP = 64 * 1024
TRICKLE = "application/trickle-ice-sdpfrag"
MAX_FRAGMENT = 16 * 1024
# set on a request handed to another worker of the node: its receiver never hands it on
HANDED = "X-Droproom-Handed"
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "OPTIONS, POST, DELETE, PATCH",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": (
        "Location, Link, ETag, Accept-Post, Accept-Patch, Retry-After"
    ),
}
routes = web.RouteTableDef()


def media_config(settings: Settings) -> MediaConfig:
    return MediaConfig(
        data_dir=settings.data_dir,
        ice_hosts=settings.ice_hosts,
        ice_public_ip=settings.ice_public_ip,
        ice_servers=MediaConfig.servers_from(settings.ice_servers),
        connect_timeout_s=settings.media_connect_timeout_s,
        listen_limits=Limits(
            per_identity=settings.whep_per_identity,
            per_room=settings.whep_per_room,
            per_process=settings.whep_per_process,
        ),
    )


def _headers(app: web.Application, **extra: str) -> dict[str, str]:
    headers = dict(_CORS)
    links = [link_header(s) for s in app[MEDIA].config.ice_servers]
    if links:
        headers["Link"] = ", ".join(links)
    headers.update(extra)
    return headers


# --- WHIP / WHEP ------------------------------------------------------------
async def _offer(request: web.Request) -> str:
    if request.content_type != SDP:
        raise web.HTTPUnsupportedMediaType(text="the offer must be application/sdp")
    body = await _text_body(request, MAX_SDP)
    if not body.startswith("v=0"):
        raise Invalid("the body is not an SDP offer")
    return body


async def _text_body(request: web.Request, limit: int) -> str:
    """The body as UTF-8 text of at most `limit` bytes, or `invalid`."""
    if request.content_length is not None and request.content_length > limit:
        raise Invalid("the body is too large")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise Invalid("the body is too large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("the body is not UTF-8") from exc


async def _room_exists(request: web.Request, room: str) -> None:
    if await request.app[ROOMS].get_room(room) is None:
        raise NotFound("no such room")


async def _may_publish(request: web.Request, claims: Claims) -> bool:
    """Host always; speakers and moderators only while on stage. Returns muted."""
    if not claims.role.can(Role.SPEAKER):
        raise Forbidden("listeners cannot publish")
    person = await request.app[ROOMS].get_participant(claims.room, claims.identity)
    claims.check_not_revoked(person)
    if not can_publish(claims.role, person):
        raise Forbidden("only speakers on stage can publish")
    return bool(person and person.muted)


def _refusal(status: int, exc: DomainError) -> web.Response:
    """An error answer a cross-origin WHIP/WHEP client can read (CORS): 422
    for what is understood but not served (RFC 9725), 429 beyond a cap."""
    return web.json_response(error_body(exc.code, exc.message), status=status, headers=_CORS)


def _etag(session_id: str) -> str:
    return f'"{session_id[:16]}"'


def _created(request: web.Request, kind: str, session_id: str, answer: str) -> web.Response:
    """201 with the session's URL: absolute (this node's URL) when several
    nodes may serve the room, so PATCH and DELETE come back to this node."""
    room = request.match_info["room"]
    location = f"/{kind}/{room}/{session_id}"
    settings = request.app[SETTINGS]
    if settings.multi_node:
        location = settings.node_url + location
    headers = _headers(request.app, Location=location, ETag=_etag(session_id))
    return web.Response(status=201, text=answer, content_type=SDP, headers=headers)


@routes.post("/whip/{room}")
async def on_whip(request: web.Request) -> web.StreamResponse:
    """Served by the process that holds the room's media lease: taken here
    when free, else the request is handed to the holding worker of this node
    or redirected (307) to the holding node (docs/protocol.md)."""
    room = request.match_info["room"]
    claims = require_token(request, room)
    muted = await _may_publish(request, claims)
    await _room_exists(request, room)
    async with request.app[OWNERSHIP].opening(room):
        elsewhere = await _to_owner(request, room)
        if elsewhere is not None:
            return elsewhere
        offer = await _offer(request)
        engine = request.app[MEDIA]
        try:
            session, answer = await engine.publish(
                room, claims.identity, offer, expires_at=claims.exp
            )
        except UnsupportedOffer as exc:
            return _refusal(422, exc)
    if muted:
        engine.set_muted(room, claims.identity, True)
    return _created(request, "whip", session.id, answer)


async def _to_owner(request: web.Request, room: str) -> web.StreamResponse | None:
    """None when this process holds (or just took) the room's media lease;
    else the owner's answer (another worker of this node, handed over), a
    307 to the owning node, or 503 `unavailable` with Retry-After while the
    lease of a holder that is gone lapses."""
    lease = await request.app[OWNERSHIP].claim(room)
    if lease.held:
        return None
    settings = request.app[SETTINGS]
    owner = lease.endpoint
    if owner.get("node") != settings.node:
        url = str(owner.get("url") or "").rstrip("/")
        if not url or url == settings.node_url:
            # a 307 there would come back here (set DROPROOM_NODE_URL per node)
            return _owner_gone(request, "the node that holds this room's audio has no URL")
        location = url + request.path_qs
        _routed(request, "redirected")
        return web.Response(status=307, headers={**_CORS, "Location": location})
    worker = str(owner.get("worker") or "")
    handoff = request.app.get(HANDOFF)
    if HANDED in request.headers or handoff is None or worker == settings.worker:
        # handed once already, or the holder was an earlier run of this worker
        return _owner_gone(request, "the process that held this room's audio is gone")
    answer = await handoff.forward(worker, _handed(request))
    if answer is None:
        return _owner_gone(request, "the process that held this room's audio is gone")
    _routed(request, "handed")
    return answer


def _routed(request: web.Request, outcome: str) -> None:
    request.app[OWNERSHIP].metrics.routed.labels(outcome).inc()


def _handed(request: web.Request) -> web.Request:
    """The request marked as handed over: its receiver serves or refuses it."""
    headers = CIMultiDict(request.headers)
    headers[HANDED] = request.app[SETTINGS].worker
    return request.clone(headers=headers)


def _owner_gone(request: web.Request, message: str) -> web.Response:
    """503: the lease of a holder that is gone lapses within its ttl, then any
    process takes it; the client tries again after Retry-After."""
    _routed(request, "gone")
    retry = str(max(1, math.ceil(request.app[SETTINGS].media_lease_ttl_s)))
    body = error_body(Code.UNAVAILABLE, message)
    return web.json_response(body, status=503, headers={**_CORS, "Retry-After": retry})


@routes.post("/whep/{room}")
async def on_whep(request: web.Request) -> web.Response:
    """Served here when this process owns the room's media (or nobody does);
    else as an edge fed by the owner's relay, except for a speaker on the
    stage, who needs the mix minus themselves: handed to the owner's worker,
    or `307` to the owner's node. At this process's cap: handed to the least
    loaded worker of the node, or `307` to the least loaded node (this region
    first); `429` when nobody can take the listener."""
    room = request.match_info["room"]
    claims = require_token(request, room)
    await _room_exists(request, room)
    app = request.app
    engine = app[MEDIA]
    cascade = app.get(EDGES)
    edge = False
    if cascade is not None:
        lease = await media_lease.current(app[ROOMS], room)
        if lease is not None and not edges.is_mine(lease, app[OWNERSHIP].holder):
            if await _on_stage(request, claims):
                answer = await _listen_at_owner(request, lease)
                if answer is not None:
                    return answer
            edge = True
        elif lease is None and not edges.sounds_here(engine, room):
            # nobody owns the room yet: whoever will, here or elsewhere, relays
            # to this edge (a speaker still hears the mix made here, if any)
            edge = not await _on_stage(request, claims)
        if engine.caps.total >= engine.caps.limits.per_process and not _placed(request):
            answer = await _place_elsewhere(request, cascade)
            if answer is not None:
                return answer
    offer = await _offer(request)
    if edge:
        assert cascade is not None
        await cascade.feeds.join(room)
    try:
        session, answer_sdp = await engine.listen(
            room, claims.identity, offer, expires_at=claims.exp, edge=edge
        )
    except UnsupportedOffer as exc:
        return _refusal(422, exc)
    except RateLimited as exc:
        return _refusal(429, exc)
    finally:
        if edge and cascade is not None:
            cascade.feeds.joined(room)
    if edge and cascade is not None:
        await cascade.feeds.read_lease(room)
    else:
        app[OWNERSHIP].watch()  # a mix here without our lease is dropped if another takes it
    return _created(request, "whep", session.id, answer_sdp)


def _placed(request: web.Request) -> bool:
    """A listener already handed or sent on once: not moved again."""
    return HANDED in request.headers or request.query.get("placed") == "1"


async def _on_stage(request: web.Request, claims: Claims) -> bool:
    """Whether the listener publishes in the room (hears the mix minus themselves)."""
    if not claims.role.can(Role.SPEAKER):
        return False
    person = await request.app[ROOMS].get_participant(claims.room, claims.identity)
    return can_publish(claims.role, person)


def _redirect(url: str, request: web.Request, **query: str) -> web.Response:
    location = URL(url).with_path(request.path).with_query({**request.query, **query})
    return web.Response(status=307, headers={**_CORS, "Location": str(location)})


async def _listen_at_owner(
    request: web.Request, lease: media_lease.MediaLease
) -> web.Response | None:
    """A speaker's WHEP to the room's owner: None when it cannot be reached."""
    endpoint, settings = lease.endpoint, request.app[SETTINGS]
    handoff = request.app.get(HANDOFF)
    worker = str(endpoint.get("worker", ""))
    if HANDED in request.headers:
        return None  # handed once already: served here
    if endpoint.get("node") == settings.node:
        if handoff is not None and handoff.has_worker(worker):
            return await handoff.forward(worker, _handed(request))
        return None
    url = str(endpoint.get("url") or "").rstrip("/")
    return _redirect(url, request) if url and url != settings.node_url else None


async def _place_elsewhere(request: web.Request, cascade: edges.Edges) -> web.Response | None:
    """This process is full: the least loaded worker of the node or node."""
    now = request.app[SCHEDULER].clock()
    handoff = request.app.get(HANDOFF)
    me = cascade.board.me
    places = [
        p
        for p in await cascade.board.places(now)
        if (p.node == me.node and handoff is not None and handoff.has_worker(p.worker))
        or (p.node != me.node and p.url != me.url)
    ]
    while places:
        place = cascade.board.choose(places)
        assert place is not None
        places.remove(place)
        if place.node != me.node:
            return _redirect(place.url, request, placed="1")
        assert handoff is not None
        answer = await handoff.forward(place.worker, _handed(request))
        if answer is not None:
            return answer
    return None


def _own_session(request: web.Request, kind: Kind) -> tuple[Claims, str]:
    """The session named by the URL, if the token's identity holds it: 401
    for a bad token, 404 for no such session, 403 for someone else's."""
    room, session_id = request.match_info["room"], request.match_info["session"]
    claims = require_token(request, room)
    session = request.app[MEDIA].sessions.get(session_id)
    if session is None or session.kind is not kind or session.room != room:
        raise NotFound("no such session")
    if session.identity != claims.identity:
        raise Forbidden("this session belongs to someone else")
    return claims, session_id


async def _to_session_worker(request: web.Request) -> web.StreamResponse | None:
    """A session id names its worker (`w2.<id>`): a PATCH or DELETE that
    landed on another worker of the node is handed to it; None to serve here.
    A session whose worker is gone went with it (404)."""
    room, session_id = request.match_info["room"], request.match_info["session"]
    require_token(request, room)
    worker = owner_of(session_id)
    handoff = request.app.get(HANDOFF)
    settings = request.app[SETTINGS]
    if worker is None or handoff is None or worker == settings.worker:
        return None
    if HANDED in request.headers:
        raise NotFound("no such session")
    answer = await handoff.forward(worker, _handed(request))
    if answer is None:
        _routed(request, "gone")
        raise NotFound("no such session")
    _routed(request, "handed")
    return answer


@routes.delete("/whip/{room}/{session}")
async def on_whip_delete(request: web.Request) -> web.StreamResponse:
    if (elsewhere := await _to_session_worker(request)) is not None:
        return elsewhere
    _, session_id = _own_session(request, Kind.PUBLISH)
    await request.app[MEDIA].close(session_id, "deleted")
    return web.Response(status=200, headers=_CORS)


@routes.delete("/whep/{room}/{session}")
async def on_whep_delete(request: web.Request) -> web.StreamResponse:
    if (elsewhere := await _to_session_worker(request)) is not None:
        return elsewhere
    _, session_id = _own_session(request, Kind.LISTEN)
    await request.app[MEDIA].close(session_id, "deleted")
    return web.Response(status=200, headers=_CORS)


@routes.patch("/whip/{room}/{session}")
@routes.patch("/whep/{room}/{session}")
async def on_patch(request: web.Request) -> web.StreamResponse:
    """Trickle ICE (RFC 9725 section 4.3): 204; an ICE restart 422."""
    if (elsewhere := await _to_session_worker(request)) is not None:
        return elsewhere
    kind = Kind.PUBLISH if request.path.startswith("/whip/") else Kind.LISTEN
    _, session_id = _own_session(request, kind)
    if request.content_type != TRICKLE:
        raise web.HTTPUnsupportedMediaType(text=f"a PATCH body must be {TRICKLE}")
    _check_etag(request, session_id)
    fragment = await _text_body(request, MAX_FRAGMENT)
    try:
        await request.app[MEDIA].add_candidates(session_id, fragment)
    except IceRestart as exc:
        return _refusal(422, exc)
    return web.Response(status=204, headers=_CORS)


def _check_etag(request: web.Request, session_id: str) -> None:
    wanted = request.headers.get("If-Match")
    if wanted is not None and wanted.strip() not in ("*", _etag(session_id)):
        raise web.HTTPPreconditionFailed(text="If-Match names another ICE session")


@routes.route("OPTIONS", "/whip/{room}")
@routes.route("OPTIONS", "/whep/{room}")
@routes.route("OPTIONS", "/whip/{room}/{session}")
@routes.route("OPTIONS", "/whep/{room}/{session}")
async def on_options(request: web.Request) -> web.Response:
    extra = {"Accept-Post": SDP, "Accept-Patch": TRICKLE}
    return web.Response(status=204, headers=_headers(request.app, **extra))


# --- recordings -------------------------------------------------------------
def _replays(engine: MediaEngine, room: str) -> list[dict[str, Any]]:
    """The recordings as `room:state` lists them (the list with moments and
    signed links is server.audio.replays)."""
    return [
        {
            "name": r.name,
            "url": f"/api/v1/rooms/{room}/replays/{r.name}",
            "started_at": r.started_at,
            "ended_at": r.ended_at,
            "duration_s": r.duration_s,
            "live": r.live,
        }
        for r in engine.replays(room)
    ]


# --- hooks into the rooms ---------------------------------------------------
def _hooks(app: web.Application, engine: MediaEngine) -> None:
    async def on_stage(room: str, identity: str, on_stage: bool, muted: bool) -> None:
        if not on_stage:
            await engine.remove_publisher(room, identity)
        else:
            engine.set_muted(room, identity, muted)

    async def snapshot(room: str, identity: str) -> dict[str, Any]:
        return {
            "replays": _replays(engine, room),
            "speaking": _speaking(engine.speaking(room)),
            "publishers": engine.publishers(room),
        }

    app[STAGE_LISTENERS].append(on_stage)
    app[SNAPSHOT_PARTS].append(snapshot)


def _speaking(levels: dict[str, float]) -> list[dict[str, Any]]:
    return [{"identity": i, "level": lv} for i, lv in sorted(levels.items())]


async def media_ctx(app: web.Application) -> AsyncIterator[None]:
    async def on_levels(room: str, levels: dict[str, float]) -> None:
        await app[EMITTER].emit([to_room(room, SPEAKING_UPDATED, {"speaking": _speaking(levels)})])

    settings = app[SETTINGS]
    engine = MediaEngine(
        media_config(settings),
        on_levels=on_levels,
        on_publishing=live.on_publishing(app),
        on_tone_end=tones.on_tone_end(app),
        session_prefix=f"{settings.worker}{SEP}" if HANDOFF in app else "",
    )
    app[MEDIA] = engine
    metrics = OwnershipMetrics(app[METRICS].registry)
    ownership = app[OWNERSHIP] = Ownership(lambda: app[ROOMS], engine, settings, metrics=metrics)
    _hooks(app, engine)
    live.schedule_sweep(app, engine)
    collector = live.SessionCollector(engine)
    app[METRICS].registry.register(collector)
    yield
    app[METRICS].registry.unregister(collector)
    await ownership.aclose()
    await engine.aclose()


def cert_command(out_dir: str) -> int:
    """`droproom cert --out DIR`: a P-256 pair for FFmpeg/OBS WHIP publishing."""
    pair = write_p256_pair(Path(out_dir))
    sys.stdout.write(f"cert_file={pair.cert_file}\nkey_file={pair.key_file}\n")
    return 0


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.cleanup_ctx.append(media_ctx)
    app.cleanup_ctx.append(edges.edges_ctx(lambda a: a[MEDIA]))
