"""`POST /api/v1/products/{id}/image` (the admin or the product's owner): an
image, raw (`image/jpeg`, `image/png`, `image/webp`, `image/gif`) or the
multipart field `file`, at most commerce.images.MAX_BYTES (413 beyond).

The body is read into memory up to the cap (never more), then decoded and
re-encoded by media.images in `IMAGE_POOL`, a small thread pool of its own
(the loop never decodes; at most `IMAGE_WORKERS` images at once, and at
most `IMAGE_QUEUE` uploads held in memory waiting for it, 503 beyond), stored
content-addressed and set as the product's `image_url`. Answers the product.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from aiohttp import web

from commerce import images
from commerce.audio import product_updated
from commerce.product_edit import Edit
from commerce.storage import IMAGE_TYPE, image_key
from kernel import validate
from kernel.errors import Code, Invalid, Unavailable
from media.images import Encoded, reencode
from server.appkeys import EMITTER, STORAGE
from server.errors import error_response
from server.shop.owners import require_product_owner
from server.shop.resources import SHOP
from server.upload_body import CHUNK, body_chunks

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

IMAGE_WORKERS = 2
IMAGE_QUEUE = 8
TOO_LARGE = f"the image is larger than {images.MAX_BYTES // (1024 * 1024)} MB"

IMAGE_POOL: web.AppKey[ThreadPoolExecutor] = web.AppKey("image_pool", ThreadPoolExecutor)
IMAGE_SLOTS: web.AppKey[asyncio.Semaphore] = web.AppKey("image_slots", asyncio.Semaphore)


class TooLarge(Exception):
    pass


def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    return body_chunks(
        request, images.UPLOAD_TYPES, "an image (image/jpeg, image/png, image/webp, image/gif)"
    )


async def receive(request: web.Request) -> bytes:
    """The upload's bytes; TooLarge beyond the cap (read no further)."""
    if request.content_length is not None and request.content_length > images.MAX_BYTES + CHUNK:
        raise TooLarge
    parts: list[bytes] = []
    size = 0
    async for chunk in _chunks(request):
        size += len(chunk)
        if size > images.MAX_BYTES:
            raise TooLarge
        parts.append(chunk)
    if size == 0:
        raise Invalid("the body is empty: send the image")
    return b"".join(parts)


async def _encoded(app: web.Application, data: bytes) -> Encoded:
    bounds = images.BOUNDS
    work = partial(
        reencode,
        data,
        max_pixels=bounds.max_pixels,
        max_side=bounds.max_side,
        quality=bounds.quality,
        formats=bounds.formats,
    )
    return await asyncio.get_running_loop().run_in_executor(app[IMAGE_POOL], work)


async def _store(app: web.Application, encoded: Encoded) -> str:
    sha = hashlib.sha256(encoded.data).hexdigest()

    def spill() -> Path:
        with tempfile.NamedTemporaryFile(delete=False, suffix=".webp") as handle:
            handle.write(encoded.data)
            return Path(handle.name)

    path = await asyncio.to_thread(spill)
    try:
        await app[STORAGE].put_file(path, image_key(sha), IMAGE_TYPE)
    finally:
        await asyncio.to_thread(path.unlink, True)
    return sha


@routes.post("/api/v1/products/{id}/image")
async def upload_image(request: web.Request) -> web.Response:
    product_id = validate.ident(request.match_info, "id")
    await require_product_owner(request, product_id)
    app = request.app
    slots = app[IMAGE_SLOTS]
    if slots.locked():
        raise Unavailable("too many images are being processed; retry in a moment")
    async with slots:
        try:
            data = await receive(request)
        except TooLarge:
            return error_response(413, Code.INVALID, TOO_LARGE)
        encoded = await _encoded(app, data)
        sha = await _store(app, encoded)
    shop = app[SHOP]
    url = images.image_url(sha)
    await shop.editor.apply(
        product_id, lambda product: Edit(dataclasses.replace(product, image_url=url), None, False)
    )
    found, inv = await shop.catalog.get(product_id)
    wire = found.as_dict(inv.left if inv else None)
    rooms = await shop.catalog.rooms_showing(product_id)
    await app[EMITTER].emit(product_updated(wire, rooms))
    logger.info(
        "product %s: image %s (%dx%d from %s, %d bytes)",
        product_id,
        sha[:12],
        encoded.width,
        encoded.height,
        encoded.source_format,
        len(data),
    )
    return web.json_response(wire)


async def images_ctx(app: web.Application) -> AsyncIterator[None]:
    app[IMAGE_POOL] = ThreadPoolExecutor(IMAGE_WORKERS, thread_name_prefix="images")
    app[IMAGE_SLOTS] = asyncio.Semaphore(IMAGE_QUEUE)
    try:
        yield
    finally:
        app[IMAGE_POOL].shutdown(wait=False, cancel_futures=True)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(images_ctx)
    app.router.add_routes(routes)
