"""Files over HTTP: signed downloads (`/files/dl/<token>/<file name>`), the
buyer's library (`/api/v1/me/library`), public previews
(`/files/previews/<sha256>.mp3`) and product images
(`/files/images/<sha256>.webp`), both immutable: the name is the hash.

A download's signature and expiry are checked on every request
(commerce.downloads); a tampered, foreign or expired link is 403 with an
error body. Local files go out by sendfile with Range (200/206/416),
`ETag` = the quoted sha256 (If-None-Match -> 304), `Content-Disposition:
attachment` with the clean title and `Cache-Control: private, max-age=<the
seconds the link has left>` (small files from memory, the rest by sendfile:
server.files.serve). With S3 storage the links are presigned S3
URLs and never reach this route (one minted before a switch to S3 is sent
there by 302). A preview with S3 is read from the bucket and served
through (small, public, cached forever by any CDN in front); a store that
is down answers 503.
"""

import logging
import re

from aiohttp import web

from commerce import downloads
from commerce.storage import (
    FORMATS,
    IMAGE_EXT,
    IMAGE_TYPE,
    PREVIEW_TYPE,
    attachment,
    image_key,
    preview_key,
)
from kernel.errors import Forbidden, NotFound
from server.appkeys import SCHEDULER, SETTINGS, STORAGE
from server.buyers import buyer_identity
from server.files.resources import LIBRARY, SERVED, SMALL_FILES
from server.files.serve import send
from server.metrics import METRICS

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

SHA256 = re.compile(r"^[0-9a-f]{64}$")
IMMUTABLE = "public, max-age=31536000, immutable"


@routes.get("/files/dl/{token}/{name}")
async def download(request: web.Request) -> web.StreamResponse:
    app = request.app
    now = app[SCHEDULER].clock()
    try:
        grant = downloads.verify(
            app[SETTINGS].secret, request.match_info["token"], request.match_info["name"], now
        )
    except Forbidden:
        app[METRICS].downloads_refused.inc()
        raise
    left = max(0, grant.expires_at - int(now))
    storage = app[STORAGE]
    path = storage.local_path(grant.key)
    if path is None:  # S3: its presigned GET, no longer than the link lives
        raise web.HTTPFound(await storage.presign(grant.key, left, grant.filename) or "/")
    etag = f'"{grant.sha256}"'
    headers = {
        "Content-Type": FORMATS[grant.format][1],
        "Content-Disposition": attachment(grant.filename),
        "Cache-Control": f"private, max-age={left}",
        "ETag": etag,
    }
    if etag in (t.strip() for t in request.headers.get("If-None-Match", "").split(",")):
        return web.Response(status=304, headers=headers)
    return await send(
        request, app[SMALL_FILES], path, grant.sha256, headers, app[SERVED][grant.format]
    )


@routes.get("/api/v1/me/library")
async def library(request: web.Request) -> web.Response:
    identity = await buyer_identity(request)
    now = request.app[SCHEDULER].clock()
    items = await request.app[LIBRARY].items(identity, now)
    return web.json_response({"items": items}, headers={"Cache-Control": "no-store"})


@routes.get("/files/previews/{name}")
async def preview(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    sha, _, ext = name.partition(".")
    if not SHA256.match(sha) or ext != "mp3":
        raise NotFound("no such preview")
    key = preview_key(sha)
    storage = request.app[STORAGE]
    headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{sha}"', "Content-Type": PREVIEW_TYPE}
    if request.headers.get("If-None-Match") == f'"{sha}"':
        return web.Response(status=304, headers=headers)
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("no such preview")
        return await send(request, request.app[SMALL_FILES], path, sha, headers)
    body = await storage.read(key)
    return web.Response(body=body, headers=headers)


@routes.get("/files/images/{name}")
async def image(request: web.Request) -> web.StreamResponse:
    """A product image (public, immutable: the name is the WebP's hash)."""
    sha, _, ext = request.match_info["name"].partition(".")
    if not SHA256.match(sha) or ext != IMAGE_EXT:
        raise NotFound("no such image")
    key = image_key(sha)
    storage = request.app[STORAGE]
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{sha}"',
        "Content-Type": IMAGE_TYPE,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == f'"{sha}"':
        return web.Response(status=304, headers=headers)
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("no such image")
        return await send(request, request.app[SMALL_FILES], path, sha, headers)
    return web.Response(body=await storage.read(key), headers=headers)
