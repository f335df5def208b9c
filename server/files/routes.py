"""Files over HTTP: public previews (`/files/previews/<sha256>.mp3`,
immutable: the name is the hash).

With local storage the preview is served from disk (sendfile); with S3 it
is read from the bucket and served through (previews are small, public and
cached forever by any CDN in front; a store that is down answers 503).
"""

import re

from aiohttp import web

from commerce.storage import PREVIEW_TYPE, preview_key
from kernel.errors import NotFound
from server.appkeys import STORAGE

routes = web.RouteTableDef()

SHA256 = re.compile(r"^[0-9a-f]{64}$")
IMMUTABLE = "public, max-age=31536000, immutable"


@routes.get("/files/previews/{name}")
async def preview(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    sha, _, ext = name.partition(".")
    if not SHA256.match(sha) or ext != "mp3":
        raise NotFound("no such preview")
    key = preview_key(sha)
    storage = request.app[STORAGE]
    headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{sha}"', "Content-Type": PREVIEW_TYPE}
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("no such preview")
        return web.FileResponse(path, headers=headers)
    if request.headers.get("If-None-Match") == f'"{sha}"':
        return web.Response(status=304, headers=headers)
    body = await storage.read(key)
    return web.Response(body=body, headers=headers)
