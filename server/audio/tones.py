"""`tone:play` / `tone:stop` (moderator): a product's preview played into
the room's live mix, so every listener hears it through the room's audio
(media.engine.play_tone). The room gets `tone:playing` `{"product_id",
"ends_at"}` and `tone:stopped` `{"product_id"}` (stopped, replaced, or
played to its end), and `room:state.tone` tells a late joiner what plays.

The product must exist (`not_found`) and have a ready preview
(`conflict`). A preview held in S3 is fetched once into the data dir.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from commerce.audio import preview_sha256
from commerce.catalog import Catalog
from commerce.events import TONE_PLAYING, TONE_STOPPED
from commerce.storage import preview_key
from kernel import validate
from kernel.errors import Conflict, NotFound
from kernel.events import Event, to_room
from media.engine import MediaEngine
from media.room import ToneEndCallback
from server.appkeys import DISPATCHER, EMITTER, REDIS, SETTINGS, SNAPSHOT_PARTS, STORAGE
from server.audio.ownership import OWNERSHIP
from server.dispatch import Ctx, Handler
from server.roles import Role


class TonePlays:
    """What plays in which room (product, ends_at), as this process started it."""

    def __init__(self) -> None:
        self.playing: dict[str, tuple[str, float]] = {}

    def started(self, room: str, product_id: str, ends_at: float) -> Event:
        self.playing[room] = (product_id, ends_at)
        return to_room(room, TONE_PLAYING, {"product_id": product_id, "ends_at": ends_at})

    def stopped(self, room: str, product_id: str | None = None) -> Event | None:
        """The event, if the tone that ended is the one the room last heard of."""
        current = self.playing.get(room)
        if current is None or (product_id is not None and current[0] != product_id):
            return None
        del self.playing[room]
        return to_room(room, TONE_STOPPED, {"product_id": current[0]})

    def snapshot(self, room: str) -> dict[str, Any] | None:
        current = self.playing.get(room)
        return {"product_id": current[0], "ends_at": current[1]} if current else None


TONE_PLAYS: web.AppKey[TonePlays] = web.AppKey("tone_plays", TonePlays)


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


def handlers(media: web.AppKey[MediaEngine]) -> tuple[Handler, Handler]:
    async def on_tone_play(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
        product_id = validate.ident(p, "product_id")
        product = await Catalog(ctx.app[REDIS]).product(product_id)
        if product is None:
            raise NotFound(f"no product {product_id}")
        sha = preview_sha256(product.audio)
        if sha is None:
            raise Conflict(f"{product_id} has no ready preview to play")
        path = await _preview_path(ctx.app, sha)
        ownership = ctx.app[OWNERSHIP]
        async with ownership.opening(ctx.room):
            lease = await ownership.claim(ctx.room)
            if not lease.held:
                # the mix is made by the lease's holder (another process); docs/operations.md
                raise Conflict(
                    "the room's audio is mixed by another server process;"
                    " tones cannot be played from this one yet"
                )
            ends_at = await ctx.app[media].play_tone(ctx.room, product_id, path, ctx.now)
        plays = ctx.app[TONE_PLAYS]
        replaced = plays.stopped(ctx.room)  # the card of the tone it replaced goes dark
        started = plays.started(ctx.room, product_id, ends_at)
        await ctx.emit([e for e in (replaced, started) if e is not None])
        return {"product_id": product_id, "ends_at": ends_at}

    async def on_tone_stop(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
        stopped = ctx.app[media].stop_tone(ctx.room)
        event = ctx.app[TONE_PLAYS].stopped(ctx.room)
        await ctx.emit([event] if event is not None else [])
        return {"stopped": stopped}

    return on_tone_play, on_tone_stop


def on_tone_end(app: web.Application) -> ToneEndCallback:
    """The engine's hook: a tone played to its end."""

    async def ended(room: str, product_id: str) -> None:
        event = app[TONE_PLAYS].stopped(room, product_id)
        if event is not None:
            await app[EMITTER].emit([event])

    return ended


def setup(app: web.Application, media: web.AppKey[MediaEngine]) -> None:
    app[TONE_PLAYS] = TonePlays()
    on_tone_play, on_tone_stop = handlers(media)
    dispatcher = app[DISPATCHER]
    dispatcher.add("tone:play", on_tone_play, role=Role.MODERATOR, module="shop")
    dispatcher.add("tone:stop", on_tone_stop, role=Role.MODERATOR, module="shop")

    async def snapshot(room: str, identity: str) -> dict[str, Any]:
        return {"tone": app[TONE_PLAYS].snapshot(room)}

    app[SNAPSHOT_PARTS].append(snapshot)
