"""`POST /api/v1/products/{id}/audio`: a creator's source sound, raw
(`audio/wav`, `audio/mpeg`, `audio/flac`, `audio/ogg`, `audio/mp4`) or the
multipart field `file`, with the window to keep (`start_s`, `length_s`) and
`tags`. The body is streamed to a file under the data dir (never held in
memory; 413 beyond MAX_SOURCE_BYTES) and probed at once off the loop: a body
that is not a sound we can read, a truncated one or a window outside it is
refused (4xx with the probe's message) and nothing is kept. Otherwise
`202 {"product"}` and the job runs (server/tones/runner.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from commerce import catalog
from commerce.audio import new_job_id
from commerce.catalog import Kind, Product
from commerce.tone_jobs import ToneJob
from kernel import validate
from kernel.errors import Code, Invalid, NotFound
from media.tones import (
    MAX_KEEP_S,
    MAX_SOURCE_BYTES,
    MAX_SOURCE_S,
    SourceInfo,
    Window,
    check_window,
    probe,
)
from server.errors import error_response
from server.owners import require_actor, require_owner
from server.tones.resources import TONES
from server.upload_body import body_chunks

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

SOUND_TYPES = frozenset(
    {
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/mpeg",
        "audio/mp3",
        "audio/flac",
        "audio/x-flac",
        "audio/ogg",
        "audio/opus",
        "audio/mp4",
        "audio/x-m4a",
        "audio/aac",
        "application/octet-stream",
    }
)
TOO_LARGE = f"the sound is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MB"


class TooLarge(Exception):
    pass


async def may_upload(request: web.Request, product: Product) -> None:
    """Who may give a product its sound: the admin key or the product's
    owner (a creator's account token); another creator is `Forbidden`."""
    await require_owner(request, product.owner)


def parse_window(query: Mapping[str, str]) -> Window:
    start = _seconds(query, "start_s", 0.0)
    length = _seconds(query, "length_s", MAX_KEEP_S)
    if length <= 0:
        raise Invalid("length_s must be more than 0 seconds")
    if start >= MAX_SOURCE_S:
        raise Invalid(f"start_s must be less than {MAX_SOURCE_S} s")
    return Window(start_s=start, length_s=min(length, MAX_KEEP_S))


def _seconds(query: Mapping[str, str], key: str, default: float) -> float:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise Invalid(f"{key} must be a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise Invalid(f"{key} must be a number of seconds, 0 or more")
    return value


def _check_product(product: Product | None, product_id: str) -> Product:
    if product is None:
        raise NotFound(f"no product {product_id}")
    if product.kind is not Kind.DIGITAL:
        raise Invalid(f"only digital products take a sound; {product_id} is {product.kind}")
    return product


def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    return body_chunks(
        request, SOUND_TYPES, "a sound (audio/wav, audio/mpeg, audio/flac, audio/ogg, audio/mp4)"
    )


async def receive(request: web.Request, dest: Path) -> int:
    """Streams the sound into `dest`; TooLarge beyond MAX_SOURCE_BYTES."""
    if request.content_length is not None and request.content_length > MAX_SOURCE_BYTES + 64 * 1024:
        raise TooLarge
    size = 0
    handle = await asyncio.to_thread(dest.open, "wb")
    try:
        async for chunk in _chunks(request):
            size += len(chunk)
            if size > MAX_SOURCE_BYTES:
                raise TooLarge
            handle.write(chunk)  # a buffered write of at most CHUNK bytes
    finally:
        await asyncio.to_thread(handle.close)
    if size == 0:
        raise Invalid("the body is empty: send the sound")
    return size


def _probe(source: Path) -> SourceInfo:
    try:
        return probe(source)
    except Invalid:
        raise
    except Exception as exc:  # whatever else FFmpeg trips on is still not a sound
        logger.info("probe of %s failed: %r", source.name, exc)
        raise Invalid("this file is not a sound we can read (WAV, FLAC, MP3, Ogg or M4A)") from None


async def _probed(source: Path, window: Window) -> Window:
    info = await asyncio.to_thread(_probe, source)
    return check_window(info, window)


@routes.post("/api/v1/products/{id}/audio")
async def upload_audio(request: web.Request) -> web.Response:
    product_id = validate.ident(request.match_info, "id")
    runner = request.app[TONES]
    product = await runner.catalog.product(product_id)
    if product is not None:
        await may_upload(request, product)
    else:
        await require_actor(request)  # strangers learn nothing about ids
    product = _check_product(product, product_id)
    window = parse_window(request.query)
    tags = catalog.parse_tags({"tags": request.query.get("tags")})
    job_id = new_job_id()
    source = runner.source_path(job_id)
    try:
        size = await receive(request, source)
        window = await _probed(source, window)
    except TooLarge:
        await asyncio.to_thread(source.unlink, True)
        return error_response(413, Code.INVALID, TOO_LARGE)
    except BaseException:
        await asyncio.to_thread(source.unlink, True)
        raise
    now = runner.clock()
    job = ToneJob(job_id, product.id, str(source), window.start_s, window.length_s, tags, now)
    logger.info("product %s: sound received (%d bytes), job %s", product.id, size, job_id)
    return web.json_response({"product": await runner.begin(job)}, status=202)
