"""HLS for the huge tail: the process that runs a room's media also writes
its mix as HLS (media.hls) into the file store, and any process serves the
playlist.

- `HlsService` is a room observer of the media engine: when a room's media
  starts it taps the room feed with an `HlsWriter` under a random session
  (the unguessable part of every segment's path), writing only while this
  process holds the room's media lease (`engine.may_record`, set by
  server.audio.ownership; no lease is asked without it); each finished segment is
  stored as `hls/<room>/<session>/<n>.ts` (immutable), the live playlist is
  written to Redis (rooms.hls) so any worker or node answers it, and the
  segments that slid out of the window (plus a grace of two) are deleted.
  When the room's media closes, the writer stops and its files go.
- `GET /hls/{room}/index.m3u8?token=...`: any valid room token; 404 while
  the room has no HLS. Its segment URIs are relative (`<session>/<n>.ts`,
  served by `GET /hls/{room}/{session}/{name}` without a token) with local
  storage, the object's URL with S3, or `DROPROOM_HLS_BASE_URL` + key (a CDN).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from commerce.storage import Storage
from kernel.errors import DomainError, Invalid, NotFound, Unauthorized
from media.hls import SEGMENT_TYPE, HlsConfig, HlsWriter, Segment, is_segment_name, render_playlist
from media.packets import SharedPacket
from media.room import RoomMedia
from rooms import hls as playlists
from rooms.store import RoomStore
from server import tokens
from server.appkeys import ROOMS, SCHEDULER, SETTINGS, STORAGE
from server.audio.routes import MEDIA
from server.config import Settings
from server.http_auth import bearer, header_bearer, require_token
from server.metrics import METRICS

logger = logging.getLogger(__name__)

IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# Segments kept after they left the playlist, for players that just read it.
GRACE_SEGMENTS = 2
# how long closing a stream waits for its storing task to end
STOP_WAIT_S = 5.0
# A local session directory untouched this long was left by a process that
# died (a live one changes at every segment): removed at start.
STALE_S = 600.0
_SESSION = re.compile(r"^[A-Za-z0-9_-]{22}$")
_CORS = {"Access-Control-Allow-Origin": "*"}
NO_STORE = {"Cache-Control": "no-store"}
routes = web.RouteTableDef()


def segment_key(room: str, session: str, name: str) -> str:
    return f"hls/{room}/{session}/{name}"


def hls_config(settings: Settings) -> HlsConfig:
    return HlsConfig(settings.hls_segment_s, settings.hls_window, settings.hls_bitrate)


@dataclass(eq=False)
class _Stream:
    room: str
    session: str
    writer: HlsWriter
    may_write: Callable[[str], bool]
    ready: asyncio.Queue[Segment] = field(default_factory=asyncio.Queue)
    kept: deque[Segment] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None

    def tap(self, packet: SharedPacket) -> None:
        """The room feed's tap: the writer starts with the first packet this
        process may write (it may open a room's media before holding its lease)."""
        if not self.may_write(self.room):
            return
        if not self.writer.started:
            self.writer.start()
        self.writer.write(packet)


class HlsService:
    """Writes the HLS of every room whose media runs in this process."""

    def __init__(
        self,
        config: HlsConfig,
        storage: Storage,
        rooms: RoomStore,
        spool: Path,
        clock: Callable[[], float],
        base_url: str | None = None,
        may_write: Callable[[str], bool] = lambda room: True,
    ) -> None:
        self.config = config
        self.storage = storage
        self.rooms = rooms
        self.spool = spool
        self.clock = clock
        self.base_url = base_url.rstrip("/") if base_url else None
        # whether this process owns the room's media now (its media lease):
        # only the owner writes; an edge or a process that lost the lease does not
        self.may_write = may_write
        self.streams: dict[RoomMedia, _Stream] = {}
        # of the writers already closed (the open ones are read live): /metrics
        self.closed_totals = {"segments": 0, "dropped": 0, "filled_s": 0.0}
        self.store_failures = 0
        # a playlist not rewritten for this long is gone (its writer died)
        self.ttl_s = max(10.0, 4 * config.segment_s)

    # --- the engine's room observer -----------------------------------------
    def opened(self, media: RoomMedia) -> None:
        room, session = media.room, secrets.token_urlsafe(16)
        loop = asyncio.get_running_loop()
        holder: list[_Stream] = []

        def on_segment(segment: Segment) -> None:  # the writer's thread
            loop.call_soon_threadsafe(holder[0].ready.put_nowait, segment)

        # numbered on the clock: a later session (here or on the next owner)
        # always continues above an earlier one's media sequence
        first = int(self.clock() / self.config.segment_s)
        writer = HlsWriter(room, self.spool / f"{room}.{session}", self.config, first, on_segment)
        stream = _Stream(room, session, writer, self.may_write)
        holder.append(stream)
        stream.task = asyncio.create_task(self._publish(stream), name=f"hls:{room}")
        media.feeds[None].taps.append(stream.tap)
        self.streams[media] = stream
        logger.debug("room %s: HLS session %s… ready", room, session[:6])

    async def closed(self, media: RoomMedia) -> None:
        stream = self.streams.pop(media, None)
        if stream is None:
            return
        room_feed = media.feeds.get(None)
        if room_feed is not None and stream.tap in room_feed.taps:
            room_feed.taps.remove(stream.tap)
        await asyncio.to_thread(stream.writer.close)
        if stream.task is not None:
            stream.task.cancel()
            # bounded, and whatever it ended with: a cancel inside redis-py may
            # come out as its TimeoutError (Python 3.11's asyncio.timeout)
            await asyncio.wait([stream.task], timeout=STOP_WAIT_S)
            if stream.task.done() and not stream.task.cancelled():
                stream.task.exception()  # read: it is the cancel, in redis-py's words
        await self._remove(stream)

    async def aclose(self) -> None:
        for media in list(self.streams):
            await self.closed(media)

    # --- storing ------------------------------------------------------------
    def uri(self, stream: _Stream, segment: Segment) -> str:
        key = segment_key(stream.room, stream.session, segment.name)
        if self.base_url:
            return f"{self.base_url}/{key}"
        return self.storage.public_url(key) or f"{stream.session}/{segment.name}"

    async def _publish(self, stream: _Stream) -> None:
        while True:
            segment = await stream.ready.get()
            try:
                await self._store(stream, segment)
            except (DomainError, OSError) as exc:
                self.store_failures += 1
                logger.warning(
                    "room %s: HLS segment %s not stored (%s)", stream.room, segment.name, exc
                )

    async def _store(self, stream: _Stream, segment: Segment) -> None:
        if not self.may_write(stream.room):  # the lease moved on: the new owner writes
            await asyncio.to_thread(segment.path.unlink, missing_ok=True)
            return
        key = segment_key(stream.room, stream.session, segment.name)
        await self.storage.put_file(segment.path, key, SEGMENT_TYPE, IMMUTABLE)
        await asyncio.to_thread(segment.path.unlink, missing_ok=True)
        stream.kept.append(segment)
        listed = list(stream.kept)[-self.config.window :]
        entries = [(s.sequence, self.uri(stream, s), s.duration_s) for s in listed]
        playlist = render_playlist(entries, self.config.segment_s)
        await playlists.put(self.rooms, stream.room, stream.session, playlist, self.ttl_s)
        while len(stream.kept) > self.config.window + GRACE_SEGMENTS:
            old = stream.kept.popleft()
            await self.storage.delete(segment_key(stream.room, stream.session, old.name))

    async def _remove(self, stream: _Stream) -> None:
        try:
            await playlists.drop(self.rooms, stream.room, stream.session)
            while stream.kept:
                old = stream.kept.popleft()
                await self.storage.delete(segment_key(stream.room, stream.session, old.name))
        except (DomainError, OSError) as exc:
            logger.warning("room %s: HLS files left behind (%s)", stream.room, exc)
        writer = stream.writer
        self.closed_totals["segments"] += writer.segments
        self.closed_totals["dropped"] += writer.dropped
        self.closed_totals["filled_s"] += writer.filled_s
        logger.info(
            "room %s: HLS session %s… stopped (%d segments, %d packets dropped, %.1f s filled)",
            stream.room,
            stream.session[:6],
            writer.segments,
            writer.dropped,
            writer.filled_s,
        )

    def totals(self) -> dict[str, float]:
        """Segments written, packets dropped, silence filled: this process, all time."""
        totals = dict(self.closed_totals)
        for stream in self.streams.values():
            totals["segments"] += stream.writer.segments
            totals["dropped"] += stream.writer.dropped
            totals["filled_s"] += stream.writer.filled_s
        return totals


class HlsCollector(Collector):
    """The HLS this process writes, read at scrape time."""

    def __init__(self, service: HlsService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        service = self.service
        writing = sum(1 for s in service.streams.values() if s.writer.started)
        totals = service.totals()
        yield GaugeMetricFamily(
            "droproom_hls_streams", "Rooms whose HLS this process writes", writing
        )
        yield CounterMetricFamily(
            "droproom_hls_segments", "HLS segments written", totals["segments"]
        )
        yield CounterMetricFamily(
            "droproom_hls_packets_dropped",
            "Room feed packets the HLS writers could not take (they fell behind)",
            totals["dropped"],
        )
        yield CounterMetricFamily(
            "droproom_hls_silence_seconds",
            "Silence written where the room feed sent nothing",
            totals["filled_s"],
        )
        yield CounterMetricFamily(
            "droproom_hls_store_failures",
            "HLS segments the file store refused",
            service.store_failures,
        )


HLS: web.AppKey[HlsService] = web.AppKey("hls", HlsService)


# --- routes -----------------------------------------------------------------
@routes.post("/api/v1/rooms/{room}/hls-link")
async def on_link(request: web.Request) -> web.Response:
    """The playlist's URL signed for HLS only, for a room token in the header.

    A player puts its playlist URL in every request, so the URL lands in the
    logs of every CDN on the way: it carries an HLS link token (the room and
    an expiry, no identity) instead of the listener's room token, which also
    chats and buys. It lasts `DROPROOM_HLS_LINK_TTL_S`, never past the room
    token; the page asks again before it runs out."""
    room = request.match_info["room"]
    token = header_bearer(request)
    if token is None:
        raise Unauthorized("a room token is required (Authorization: Bearer <token>)")
    if not token.isascii():
        raise Invalid("the token is not ASCII")
    settings = request.app[SETTINGS]
    claims = tokens.verify(settings.secret, token, room=room)
    now = request.app[SCHEDULER].clock()
    expires_at = int(min(claims.exp, now + settings.hls_link_ttl_s))
    link = tokens.mint_hls(
        settings.secret, room=room, now=now, expires_at=expires_at, jti=claims.jti
    )
    url = f"/hls/{quote(room, safe='')}/index.m3u8?token={link}"
    # `expires_in`: the page renews on its own clock, whatever the phone's time says
    body = {"url": url, "expires_at": expires_at, "expires_in": max(0, int(expires_at - now))}
    return web.json_response(body, headers=NO_STORE)


@routes.get("/hls/{room}/index.m3u8")
async def on_playlist(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    token = bearer(request)
    if token is not None and token.isascii() and tokens.kind_of(token) == tokens.KIND_HLS:
        tokens.verify_hls(request.app[SETTINGS].secret, token, room=room)
    else:
        require_token(request, room)  # a room token (PROTOCOL.md) works as well
    playlist = await playlists.current(request.app[ROOMS], room)
    if playlist is None:
        raise NotFound("this room has no live HLS stream (it is not live yet)")
    headers = {"Cache-Control": "no-cache", **_CORS}
    return web.Response(text=playlist, content_type=PLAYLIST_TYPE, headers=headers)


@routes.get("/hls/{room}/{session}/{name}")
async def on_segment(request: web.Request) -> web.StreamResponse:
    """A segment: no token (its path is unguessable), cacheable forever."""
    room, session, name = (request.match_info[k] for k in ("room", "session", "name"))
    if not _SESSION.match(session) or not is_segment_name(name):
        raise NotFound("no such segment")
    key = segment_key(room, session, name)
    storage = request.app[STORAGE]
    headers = {"Cache-Control": IMMUTABLE, "Content-Type": SEGMENT_TYPE, **_CORS}
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFound("no such segment")
        return web.FileResponse(path, headers=headers)
    return web.Response(body=await storage.read(key), headers=headers)


# --- lifecycle --------------------------------------------------------------
def sweep_stale(root: Path, now: float, stale_s: float = STALE_S) -> int:
    """Removes `root/<room>/<session>/` directories (local storage) that no
    segment was written to or deleted from for `stale_s`; returns how many."""
    removed = 0
    for session in root.glob("*/*"):
        try:
            if session.is_dir() and now - session.stat().st_mtime > stale_s:
                shutil.rmtree(session, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue  # another worker swept it first
    return removed


async def hls_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.hls:
        yield
        return
    engine = app[MEDIA]
    spool = settings.data_dir / "run" / "hls" / settings.worker
    await asyncio.to_thread(shutil.rmtree, spool, True)  # what a dead process left
    local = app[STORAGE].local_path("hls")
    if local is not None and local.is_dir():
        swept = await asyncio.to_thread(sweep_stale, local, app[SCHEDULER].clock())
        if swept:
            logger.info("HLS: %d sessions left by ended processes removed", swept)
    service = HlsService(
        hls_config(settings),
        app[STORAGE],
        app[ROOMS],
        spool,
        app[SCHEDULER].clock,
        settings.hls_base_url,
        lambda room: engine.may_record is None or engine.may_record(room),
    )
    app[HLS] = service
    engine.observers.append(service)
    collector = HlsCollector(service)
    app[METRICS].registry.register(collector)
    yield
    app[METRICS].registry.unregister(collector)
    engine.observers.remove(service)
    await service.aclose()


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.cleanup_ctx.append(hls_ctx)
