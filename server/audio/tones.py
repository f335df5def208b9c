"""`tone:play` / `tone:stop` (moderator): a product's preview played into
the room's live mix, so every listener hears it through the room's audio
(media.engine.play_tone). The room gets `tone:playing` `{"product_id",
"ends_at"}` and `tone:stopped` `{"product_id"}` (stopped, replaced, or
played to its end), and `room:state.tone` tells a late joiner what plays.

The product must exist (`not_found`) and have a ready preview
(`conflict`). A preview held in S3 is fetched once into the data dir.

Only the process that holds the room's media lease (server.audio.ownership)
mixes the room, so it plays the tone; a moderator connected to another
process has the command handed to it: to the holding worker of this node
over its unix socket, to the holding node at its URL, through the internal
route `POST /internal/v1/rooms/{room}/tone`. That route serves only a
request that proves it comes from a process of this site (`X-Droproom-Proof`:
an HMAC of the request with the shared secret, recent) and never hands one
on. When nobody holds the lease, the moderator's process takes it. What
plays is kept in Redis (commerce.tone_plays), so a late joiner on any
process reads it, and the events are room events (the room relay carries
them to every process).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from commerce.audio import preview_sha256
from commerce.catalog import Catalog
from commerce.storage import preview_key
from commerce.tone_plays import TonePlays
from kernel import validate
from kernel.errors import Conflict, Invalid, NotFound, Unauthorized, Unavailable, from_code
from media.engine import MediaEngine
from media.room import ToneEndCallback
from rooms import media_lease
from server.appkeys import (
    DISPATCHER,
    EMITTER,
    HANDOFF,
    REDIS,
    ROOMS,
    SCHEDULER,
    SETTINGS,
    SNAPSHOT_PARTS,
    STORAGE,
)
from server.audio.ownership import OWNERSHIP
from server.dispatch import Ctx, Handler
from server.roles import Role
from server.workers import worker_socket

TONE_PLAYS: web.AppKey[TonePlays] = web.AppKey("tone_plays", TonePlays)

TONE_ROUTE = "/internal/v1/rooms/{room}/tone"
# `<unix seconds>.<nonce>.<hex HMAC-SHA256>` of the request (see `proof`)
PROOF = "X-Droproom-Proof"
# the same mark as server.audio.routes.HANDED: its receiver never hands it on
HANDED = "X-Droproom-Handed"
PROOF_WINDOW_S = 60.0
MAX_BODY = 4096
# a handed tone:play waits for the holder to fetch and decode the preview
HAND_TIMEOUT_S = 30.0
GONE = "the process that mixes this room's audio cannot be reached; try again shortly"


# --- the proof between processes ------------------------------------------------
_PROOF_SHAPE = re.compile(r"^([0-9]{1,12})\.([0-9a-f]{16})\.([0-9a-f]{64})$")


def proof(secret: str, now: float, path: str, body: bytes) -> str:
    """What a process of this site sends with a request to another one (a
    fresh nonce each time: a proof is good once)."""
    stamp, nonce = str(int(now)), secrets.token_hex(8)
    return f"{stamp}.{nonce}.{_mac(secret, stamp, nonce, path, body)}"


def _mac(secret: str, stamp: str, nonce: str, path: str, body: bytes) -> str:
    signed = b"droproom-internal\n" + f"{stamp}\n{nonce}\n{path}\n".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def check_proof(secret: str, now: float, path: str, body: bytes, given: str | None) -> str:
    """`unauthorized` unless `given` is a recent proof of exactly this
    request; returns its nonce (the caller refuses one seen before)."""
    shape = _PROOF_SHAPE.match(given or "")
    if shape is None:
        raise Unauthorized("this route is for the site's own processes")
    stamp, nonce, mac = shape.groups()
    if abs(now - int(stamp)) > PROOF_WINDOW_S:
        raise Unauthorized("the proof is too old")
    if not hmac.compare_digest(mac, _mac(secret, stamp, nonce, path, body)):
        raise Unauthorized("this route is for the site's own processes")
    return nonce


def _nonce_key(nonce: str) -> str:
    # STRING "1" (TTL: twice the proof window): an internal request's nonce, seen once
    return "{internal}:nonce:" + nonce


# --- playing here -----------------------------------------------------------------
async def _preview_path(app: web.Application, sha: str) -> Path:
    """The preview as a local file: the store's own, or a copy of it."""
    storage = app[STORAGE]
    key = preview_key(sha)
    local = storage.local_path(key)
    if local is not None:
        if not await asyncio.to_thread(local.is_file):
            raise Conflict("the preview of this product is missing from the file store")
        return local
    cached = app[SETTINGS].data_dir / "tones" / "previews" / f"{sha}.mp3"
    if not await asyncio.to_thread(cached.is_file):
        try:
            data = await storage.read(key)
        except NotFound:
            raise Conflict("the preview of this product is missing from the file store") from None
        await asyncio.to_thread(_write, cached, data)
    return cached


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)


async def _preview_of(app: web.Application, product_id: str) -> str:
    """The sha256 of the product's ready preview: `not_found`, `conflict`."""
    product = await Catalog(app[REDIS]).product(product_id)
    if product is None:
        raise NotFound(f"no product {product_id}")
    sha = preview_sha256(product.audio)
    if sha is None:
        raise Conflict(f"{product_id} has no ready preview to play")
    return sha


async def play(
    app: web.Application,
    media: web.AppKey[MediaEngine],
    room: str,
    product_id: str,
    handed: bool = False,
) -> dict[str, Any]:
    """Played here when this process holds (or just took) the room's media
    lease, else handed to the holder (unless `handed` already)."""
    sha = await _preview_of(app, product_id)
    ownership = app[OWNERSHIP]
    async with ownership.opening(room):
        lease = await ownership.claim(room)
        if lease.held:
            path = await _preview_path(app, sha)
            now = app[SCHEDULER].clock()
            ends_at = await app[media].play_tone(room, product_id, path, now)
            await app[EMITTER].emit(await app[TONE_PLAYS].started(room, product_id, ends_at, now))
            return {"product_id": product_id, "ends_at": ends_at}
    if handed:
        raise Unavailable("the room's audio moved to another process; try again")
    answer = await _hand(app, lease.endpoint, room, {"action": "play", "product_id": product_id})
    return {"product_id": str(answer["product_id"]), "ends_at": float(answer["ends_at"])}


async def stop(
    app: web.Application, media: web.AppKey[MediaEngine], room: str, handed: bool = False
) -> dict[str, Any]:
    """Stopped here when this process mixes the room or nobody does (the
    room hears of it either way), else handed to the holder."""
    lease = await media_lease.current(app[ROOMS], room)
    if lease is not None and lease.holder != app[OWNERSHIP].holder:
        if handed:
            raise Unavailable("the room's audio moved to another process; try again")
        answer = await _hand(app, lease.endpoint, room, {"action": "stop"})
        return {"stopped": bool(answer["stopped"])}
    stopped = app[media].stop_tone(room)
    event = await app[TONE_PLAYS].stopped(room)
    await app[EMITTER].emit([event] if event is not None else [])
    return {"stopped": stopped}


# --- handing to the holder ----------------------------------------------------------
async def _hand(
    app: web.Application, endpoint: Mapping[str, Any], room: str, command: dict[str, Any]
) -> dict[str, Any]:
    """The holder's answer to `command`; its refusal raised as ours."""
    settings = app[SETTINGS]
    path = TONE_ROUTE.format(room=room)
    if endpoint.get("node") == settings.node:
        worker = str(endpoint.get("worker") or "")
        handoff = app.get(HANDOFF)
        if handoff is None or not handoff.has_worker(worker):
            raise Unavailable(GONE)  # the holder was an earlier run of a worker: it lapses
        connector: aiohttp.BaseConnector = aiohttp.UnixConnector(
            path=str(worker_socket(settings.data_dir, worker))
        )
        url = f"http://{worker}{path}"
    else:
        base = str(endpoint.get("url") or "").rstrip("/")
        if not base or base == settings.node_url:
            raise Unavailable(GONE)  # it would come back here (set DROPROOM_NODE_URL per node)
        connector = aiohttp.TCPConnector(force_close=True)
        url = base + path
    body = json.dumps(command).encode()
    headers = {
        "Content-Type": "application/json",
        PROOF: proof(settings.secret, app[SCHEDULER].clock(), path, body),
        HANDED: settings.worker or settings.node,
    }
    timeout = aiohttp.ClientTimeout(total=HAND_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as http,
            http.post(url, data=body, headers=headers, allow_redirects=False) as resp,
        ):
            status, text = resp.status, await resp.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        raise Unavailable(GONE) from None
    return _answer(status, text)


def _answer(status: int, text: str) -> dict[str, Any]:
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if status == 200 and isinstance(found, dict):
        return found
    error = found.get("error") if isinstance(found, dict) else None
    if status in (401, 403) or not isinstance(error, dict):
        raise Unavailable("the process that mixes this room's audio refused the command")
    raise from_code(str(error.get("code")), str(error.get("message")))


Route = Callable[[web.Request], Awaitable[web.Response]]


def internal_route(media: web.AppKey[MediaEngine]) -> Route:
    async def on_internal_tone(request: web.Request) -> web.Response:
        """`POST /internal/v1/rooms/{room}/tone` `{"action": "play", "product_id"}`
        or `{"action": "stop"}`, from another process of this site only."""
        app = request.app
        room = request.match_info["room"]
        body = await request.read()  # the app's body limit bounds it
        now = app[SCHEDULER].clock()
        nonce = check_proof(
            app[SETTINGS].secret, now, request.path, body, request.headers.get(PROOF)
        )
        fresh = await app[REDIS].set(_nonce_key(nonce), "1", nx=True, ex=int(2 * PROOF_WINDOW_S))
        if not fresh:
            raise Unauthorized("this proof was used already")
        if len(body) > MAX_BODY:
            raise Invalid("the body is too large")
        try:
            command = validate.as_payload(json.loads(body))
        except ValueError:
            raise Invalid("the body is not JSON") from None
        if await app[ROOMS].get_room(room) is None:
            raise NotFound("no such room")
        action = command.get("action")
        if action == "play":
            product_id = validate.ident(command, "product_id")
            return web.json_response(await play(app, media, room, product_id, handed=True))
        if action == "stop":
            return web.json_response(await stop(app, media, room, handed=True))
        raise Invalid("action must be play or stop")

    return on_internal_tone


# --- the moderator's commands -----------------------------------------------------------
def handlers(media: web.AppKey[MediaEngine]) -> tuple[Handler, Handler]:
    async def on_tone_play(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
        product_id = validate.ident(p, "product_id")
        return await play(ctx.app, media, ctx.room, product_id)

    async def on_tone_stop(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
        return await stop(ctx.app, media, ctx.room)

    return on_tone_play, on_tone_stop


def on_tone_end(app: web.Application) -> ToneEndCallback:
    """The engine's hook: a tone played to its end (in the holder)."""

    async def ended(room: str, product_id: str) -> None:
        event = await app[TONE_PLAYS].ended(room, product_id)
        if event is not None:
            await app[EMITTER].emit([event])

    return ended


def setup(app: web.Application, media: web.AppKey[MediaEngine]) -> None:
    on_tone_play, on_tone_stop = handlers(media)
    dispatcher = app[DISPATCHER]
    dispatcher.add("tone:play", on_tone_play, role=Role.MODERATOR, module="shop")
    dispatcher.add("tone:stop", on_tone_stop, role=Role.MODERATOR, module="shop")
    app.router.add_post(TONE_ROUTE, internal_route(media))

    async def plays_ctx(app: web.Application) -> AsyncIterator[None]:
        app[TONE_PLAYS] = TonePlays(app[REDIS])
        yield

    app.cleanup_ctx.append(plays_ctx)

    async def snapshot(room: str, identity: str) -> dict[str, Any]:
        return {"tone": await app[TONE_PLAYS].current(room)}

    app[SNAPSHOT_PARTS].append(snapshot)
