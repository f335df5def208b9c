"""The media engine: the registry of WHIP/WHEP sessions and the rooms they
feed. This is the interface `server/` uses:

    engine = MediaEngine(config, on_levels=..., on_publishing=...)
    session = await engine.publish(room, identity, offer_sdp, expires_at=...)
    session = await engine.listen(room, identity, offer_sdp, expires_at=...)  # capped
    session = await engine.listen(..., edge=True)  # fed by the owner's relay (media.edge)
    engine.edges[room].receive(token, seq, payload, timestamp)  # a relayed packet
    await engine.add_candidates(session_id, sdpfrag)   # trickle ICE
    await engine.close(session_id)
    engine.rooms_publishing(); engine.session_counts(); engine.caps.refused
    engine.set_muted(room, identity, muted); await engine.remove_publisher(room, identity)
    engine.speaking(room); engine.replays(room); await engine.aclose()
    ends_at = await engine.play_tone(room, product_id, path, now)  # into the mix
    engine.stop_tone(room); engine.tone_playing(room)

Peers are closed on `failed`, on close(), on token expiry, on RTP
inactivity (publishers), when never connected in time and at aclose(); a
closed peer is freed at once (`signaling.close_peer`). Must not import
aiohttp or `server/`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from kernel.errors import Conflict, NotFound
from media.caps import SessionCaps
from media.config import MediaConfig
from media.edge import EdgeRoom
from media.ice import stop_consent_checks
from media.ingest import Publisher, RtpTap
from media.recording import Replay, is_recording_name, list_replays, room_dir
from media.room import LevelsCallback, RoomMedia, ToneEndCallback
from media.session import Kind, Session, check_room_id, new_session_id
from media.signaling import (
    DtlsCertificate,
    Negotiated,
    add_remote_candidates,
    answer_listener,
    answer_publisher,
    close_peer,
)
from media.ticker import MediaThread
from media.tone import ToneUnreadable, ToneVoice, decode_tone

logger = logging.getLogger(__name__)

_WATCH_INTERVAL_S = 1.0
# (room) -> None: a publisher's peer of that room just connected
PublishingCallback = Callable[[str], Awaitable[None]]
# (room) -> None: the last edge listener of that room in this process left
EdgeGoneCallback = Callable[[str], None]


class RoomObserver(Protocol):
    """Told when a room's media starts (add taps there) and once it has
    closed (stop what the taps fed); HLS is one (server.audio.hls)."""

    def opened(self, media: RoomMedia) -> None: ...
    async def closed(self, media: RoomMedia) -> None: ...


class MediaEngine:
    def __init__(
        self,
        config: MediaConfig,
        on_levels: LevelsCallback | None = None,
        on_publishing: PublishingCallback | None = None,
        on_tone_end: ToneEndCallback | None = None,
        on_edge_gone: EdgeGoneCallback | None = None,
        session_prefix: str = "",
    ) -> None:
        self.config = config
        self.on_edge_gone = on_edge_gone  # set by server.audio.edges
        # rooms whose listeners here are fed by their owner's relay (media.edge)
        self.edges: dict[str, EdgeRoom] = {}
        # "w2." in a worker of a node: the session ids name the process that holds them
        self.session_prefix = session_prefix
        # (room) -> whether this process may record that room now (its media lease)
        self.may_record: Callable[[str], bool] | None = None
        self._on_levels = on_levels
        self._on_publishing = on_publishing
        self._on_tone_end = on_tone_end
        self.sessions: dict[str, Session] = {}
        self.rooms: dict[str, RoomMedia] = {}
        self._publishers: dict[str, Publisher] = {}  # session id -> ingest
        self._watchdog: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[Any]] = set()  # closes and hooks under way
        self.caps = SessionCaps(config.listen_limits)
        self.observers: list[RoomObserver] = []
        self.ticker: MediaThread | None = None  # made with the first room
        self._certificate = DtlsCertificate()  # one for every peer (signaling)

    # --- opening ----------------------------------------------------------
    async def publish(
        self, room: str, identity: str, offer_sdp: str, expires_at: float | None = None
    ) -> tuple[Session, str]:
        """WHIP: returns the session and the SDP answer. Replaces an older
        publish of the same identity in the room."""
        check_room_id(room)
        session_id = self.session_prefix + new_session_id()
        tap = RtpTap()
        negotiated = await answer_publisher(
            self.config, offer_sdp, tap, self._certificate.current()
        )
        media = self._room(room)
        previous = media.publishers.get(identity)
        session = self._register(room, identity, Kind.PUBLISH, negotiated, expires_at, session_id)
        tap.publisher = self._publishers[session.id] = media.add_publisher(identity, session.id)
        self._gate_recorder(room, media)
        if previous is not None:
            await self.close(previous.session_id, "replaced")
        logger.info("room %s: %s publishes (session %s)", room, identity, session.id[:8])
        return session, negotiated.answer_sdp

    async def listen(
        self,
        room: str,
        identity: str,
        offer_sdp: str,
        expires_at: float | None = None,
        *,
        edge: bool = False,
    ) -> tuple[Session, str]:
        """WHEP: returns the session and the SDP answer; `RateLimited` beyond
        the caps (a slot is held while the offer is answered). `edge`: the
        listener hears the room's owner through `edges[room]`, not a mix here."""
        check_room_id(room)
        self.caps.take(room, identity)
        try:
            negotiated = await answer_listener(self.config, offer_sdp, self._certificate.current())
        except BaseException:
            self.caps.give_back(room, identity)
            raise
        session = self._register(room, identity, Kind.LISTEN, negotiated, expires_at)
        assert negotiated.wire is not None
        if edge:
            self.edge_room(room).add_listener(session.id, negotiated.wire)
        else:
            self._room(room).add_listener(session.id, identity, negotiated.wire)
        logger.debug("room %s: %s listens (session %s)", room, identity, session.id[:8])
        return session, negotiated.answer_sdp

    def _register(
        self,
        room: str,
        identity: str,
        kind: Kind,
        negotiated: Negotiated,
        expires_at: float | None,
        session_id: str | None = None,
    ) -> Session:
        loop = asyncio.get_running_loop()
        session = Session(
            session_id or self.session_prefix + new_session_id(),
            room,
            identity,
            kind,
            negotiated.pc,
            loop.time(),
            expires_at,
        )
        self.sessions[session.id] = session
        negotiated.pc.on("connectionstatechange", lambda: self._on_state(session))
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.create_task(self._watch(), name="media-watchdog")
        return session

    def _room(self, room: str) -> RoomMedia:
        media = self.rooms.get(room)
        if media is None:
            if self.ticker is None and self.config.media_thread:
                self.ticker = MediaThread(asyncio.get_running_loop())
            media = self.rooms[room] = RoomMedia(
                room,
                input_frames=self.config.input_frames,
                queue_size=self.config.listener_queue,
                record_root=self.config.recordings_dir if self.config.record else None,
                level_interval_s=self.config.level_interval_s,
                on_levels=self._on_levels,
                on_tone_end=self._tone_ended,
                ticker=self.ticker,
            )
            for observer in self.observers:
                try:
                    observer.opened(media)
                except Exception:
                    logger.exception("room %s: a room observer failed to start", room)
        return media

    async def _end_room(self, media: RoomMedia) -> None:
        await media.aclose()
        for observer in self.observers:
            try:
                await observer.closed(media)
            except Exception:
                logger.exception("room %s: a room observer failed to stop", media.room)

    def edge_room(self, room: str) -> EdgeRoom:
        edge = self.edges.get(room)
        if edge is None:
            clock = asyncio.get_running_loop().time
            edge = self.edges[room] = EdgeRoom(room, clock, self.config.listener_queue)
        return edge

    def _leave_edge(self, session: Session) -> None:
        edge = self.edges.get(session.room)
        if edge is None or session.id not in edge.listeners:
            return
        edge.remove_listener(session.id)
        if edge.is_empty():
            del self.edges[session.room]
            if self.on_edge_gone is not None:
                self.on_edge_gone(session.room)

    def _gate_recorder(self, room: str, media: RoomMedia) -> None:
        may_record = self.may_record
        if media.recorder is not None and media.recorder.gate is None and may_record is not None:
            media.recorder.gate = lambda: may_record(room)

    async def drop_room(self, room: str, reason: str) -> int:
        """This process must no longer serve the room's media (it lost the
        room's lease): its recorder stops writing at once, then every session
        of the room closes (publishers reconnect, to the owner; its edge
        listeners stay, fed by the new owner) and the room's media is
        forgotten. Returns the sessions closed."""
        media = self.rooms.pop(room, None)
        if media is not None and media.recorder is not None:
            media.recorder.gate = lambda: False
        edge = self.edges.get(room)
        fed = edge.listeners if edge is not None else {}  # they hear the new owner
        closing = [s.id for s in self.sessions.values() if s.room == room and s.id not in fed]
        for session_id in closing:
            await self.close(session_id, reason)
        if media is not None:
            await self._end_room(media)
        return len(closing)

    # --- tones ------------------------------------------------------------
    async def play_tone(self, room: str, product_id: str, path: Path, now: float) -> float:
        """Plays the sound at `path` into the room's mix (decoded off the loop),
        replacing a tone still playing; the room mixes while it plays, with
        or without voices. Returns when it ends (`now` + its length)."""
        check_room_id(room)
        try:
            pcm = await asyncio.to_thread(decode_tone, str(path))
        except ToneUnreadable as exc:
            logger.warning("room %s: tone of %s unreadable: %s", room, product_id, exc)
            raise Conflict("the preview of this product cannot be played") from None
        voice = ToneVoice(product_id, pcm)
        self._room(room).play_tone(voice)
        logger.info("room %s: tone of %s plays (%.1f s)", room, product_id, voice.duration_s)
        return now + voice.duration_s

    def stop_tone(self, room: str) -> bool:
        media = self.rooms.get(room)
        stopped = media.stop_tone() if media is not None else False
        if stopped and media is not None and media.is_empty():
            self._forget_room(room, media)
        return stopped

    def tone_playing(self, room: str) -> str | None:
        """The product whose tone plays in the room, if any."""
        media = self.rooms.get(room)
        tone = media.mixer.tone if media is not None else None
        return tone.product_id if tone is not None else None

    async def _tone_ended(self, room: str, product_id: str) -> None:
        media = self.rooms.get(room)
        if media is not None and media.is_empty():
            self._forget_room(room, media)
        if self._on_tone_end is not None:
            await self._on_tone_end(room, product_id)

    def _forget_room(self, room: str, media: RoomMedia) -> None:
        """Nobody is left in the room's media: its tick stops."""
        if self.rooms.get(room) is media:
            del self.rooms[room]
            self._track(asyncio.create_task(self._end_room(media)))

    # --- state ------------------------------------------------------------
    def _on_state(self, session: Session) -> None:
        state = session.pc.connectionState
        if state == "connected" and session.connected_at is None:
            session.connected_at = asyncio.get_running_loop().time()
            if session.kind is Kind.PUBLISH:
                stop_consent_checks(session.pc, session.room)
                self._tell_publishing(session.room)
        elif state in ("failed", "closed") and not session.closed:
            self._close_later(session.id, state)

    def _tell_publishing(self, room: str) -> None:
        if self._on_publishing is not None:
            self._track(asyncio.create_task(self._publishing(room)))

    async def _publishing(self, room: str) -> None:
        assert self._on_publishing is not None
        try:
            await self._on_publishing(room)
        except Exception:
            logger.exception("room %s: the publishing hook failed", room)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _close_later(self, session_id: str, reason: str) -> None:
        self._track(asyncio.create_task(self.close(session_id, reason)))

    # --- closing ----------------------------------------------------------
    async def close(self, session_id: str, reason: str = "closed") -> bool:
        session = self.sessions.pop(session_id, None)
        if session is None or session.closed:
            return False
        session.closed, session.reason = True, reason
        media = self.rooms.get(session.room)
        if media is not None:
            if session.kind is Kind.PUBLISH:
                media.remove_publisher(session.identity, session.id)
            else:
                media.remove_listener(session.id)
        if session.kind is Kind.LISTEN:
            self.caps.give_back(session.room, session.identity)
            self._leave_edge(session)
        self._publishers.pop(session.id, None)
        await close_peer(session.pc)
        logger.info(
            "room %s: %s session of %s closed (%s)",
            session.room,
            session.kind,
            session.identity,
            reason,
        )
        if media is not None and media.is_empty() and self.rooms.get(session.room) is media:
            del self.rooms[session.room]
            await self._end_room(media)
        return True

    async def add_candidates(self, session_id: str, fragment: str) -> int:
        """Trickle ICE (PATCH): the client's candidates join the session's ICE."""
        session = self.sessions.get(session_id)
        if session is None or session.closed:
            raise NotFound("no such session")
        added = await add_remote_candidates(session.pc, fragment)
        logger.debug(
            "room %s: %d candidates trickled (session %s)", session.room, added, session_id[:8]
        )
        return added

    async def remove_publisher(self, room: str, identity: str) -> bool:
        media = self.rooms.get(room)
        publisher = media.publishers.get(identity) if media else None
        if publisher is None:
            return False
        return await self.close(publisher.session_id, "removed from stage")

    async def aclose(self) -> None:
        for session_id in list(self.sessions):
            await self.close(session_id, "shutdown")
        for task in [self._watchdog, *self._closing]:
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._watchdog = None
        for media in list(self.rooms.values()):
            await self._end_room(media)
        self.rooms.clear()
        if self.ticker is not None:
            # joins the media thread (up to 2 s on a starved machine): off the loop
            await asyncio.to_thread(self.ticker.stop)
            self.ticker = None

    # --- moderation and state ---------------------------------------------
    def set_muted(self, room: str, identity: str, muted: bool) -> bool:
        media = self.rooms.get(room)
        return media.set_muted(identity, muted) if media else False

    def speaking(self, room: str) -> dict[str, float]:
        media = self.rooms.get(room)
        return media.speaking() if media else {}

    def rooms_publishing(self) -> set[str]:
        """Rooms where at least one publisher's peer is connected."""
        return {
            s.room
            for s in self.sessions.values()
            if s.kind is Kind.PUBLISH and s.connected_at is not None and not s.closed
        }

    def session_counts(self) -> dict[Kind, int]:
        counts = dict.fromkeys(Kind, 0)
        for session in self.sessions.values():
            counts[session.kind] += 1
        return counts

    def publishers(self, room: str) -> list[str]:
        media = self.rooms.get(room)
        return sorted(media.publishers) if media else []

    def replays(self, room: str, now: float | None = None) -> list[Replay]:
        """Given `now` (Unix s), a recording left open by an ended process
        is listed as ended (media.recording.list_replays)."""
        return list_replays(self.config.recordings_dir, check_room_id(room), now)

    def replay_path(self, room: str, name: str) -> Path:
        if not is_recording_name(name):
            raise NotFound("no such recording")
        path = room_dir(self.config.recordings_dir, check_room_id(room)) / name
        if not path.is_file():
            raise NotFound("no such recording")
        return path

    # --- watchdog ---------------------------------------------------------
    async def _watch(self) -> None:
        while self.sessions:
            await asyncio.sleep(_WATCH_INTERVAL_S)
            for session_id, reason in self._overdue():
                await self.close(session_id, reason)

    def _overdue(self) -> list[tuple[str, str]]:
        now, wall = asyncio.get_running_loop().time(), time.time()
        found = []
        for session in list(self.sessions.values()):
            if session.is_expired(wall):
                found.append((session.id, "token expired"))
            elif session.never_connected(now, self.config.connect_timeout_s):
                found.append((session.id, "never connected"))
            elif session.kind is Kind.PUBLISH and self._is_silent(session, now):
                found.append((session.id, "no RTP"))
        return found

    def _is_silent(self, session: Session, now: float) -> bool:
        publisher = self._publishers.get(session.id)
        if publisher is None or session.connected_at is None:
            return False
        last = publisher.last_rx if publisher.last_rx is not None else session.connected_at
        return now - last > self.config.inactivity_timeout_s
