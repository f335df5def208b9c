"""The cascade (issue 15): the owner of a room's media relays its encoded
room feed through Redis; every other process with listeners of the room is
an edge that fans the packets out to them (media/edge.py).

- `Relay` (owner side): a tap on the room feed (`RoomMedia.feeds[None]`)
  queues every packet; one task publishes them on the room's media channel
  (sharded pub/sub on a Cluster: the channel carries the room's hash tag, so
  it lives on the room's slot). The tick only appends to a bounded queue;
  past its bound the oldest packet is dropped and counted.
  The owner interface: `relay.own(room, token)` while this process holds a
  room's media lease (idempotent), `relay.disown(room)` once it does not.
- `EdgeFeeds` (edge side): one subscription per room per process while the
  room has edge listeners here; every frame goes to the engine's edge room,
  which fences it with the lease's token (re-read here when a frame carries
  a token we have not read, and every `LEASE_READ_S`).
- `LoadBoard`: each process's WHEP listener count in one Redis hash (each
  entry stamped; stale ones ignored; the hash expires when nobody writes),
  read to place a listener on the least loaded worker of this node or, by
  region, on another node.
- `OwnerSync`: the link to the owner side (server/audio/ownership.py, which
  takes, renews and loses the lease): the relay relays exactly the rooms
  whose lease this process holds and may still serve.

Frames on `droproom:media:{room:<id>}`: a msgpack list
`[1, room, token, seq, timestamp, duration, sent_at, payload]` (`sent_at`:
the owner's wall clock when it left the owner's feed; `timestamp` and
`duration` in 48 kHz samples on the owner's timeline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisClusterException, RedisError

from media.engine import MediaEngine
from media.packets import FRAME_SAMPLES, SharedPacket
from rooms import media_lease
from rooms.store import RoomStore
from server.appkeys import REDIS, ROOMS, SCHEDULER, SETTINGS
from server.audio.ownership import OWNERSHIP, Ownership
from server.config import Settings
from server.metrics import METRICS
from server.relay.transport import Transport, transport_for

logger = logging.getLogger(__name__)

# droproom:media:{room:<room id>}   every encoded packet of the room's feed
CHANNEL = "droproom:media:{{room:{}}}"
FRAME_VERSION = 1
# About 5 s of packets per owned room waiting to be published; past it the oldest go.
RELAY_QUEUE = 250
# Packets published in one round trip at most (a pipeline).
RELAY_BATCH = 64
LEASE_READ_S = 2.0
SUBSCRIBE_WAIT_S = 5.0
# how long closing waits for the relay's publisher task to end
CLOSE_WAIT_S = 5.0
# droproom:whep:load   <node>/<worker> -> {"node","worker","url","region","count","cap","at"}
LOAD_KEY = "droproom:whep:load"
LOAD_EVERY_S = 2.0
LOAD_FRESH_S = 6.0
SYNC_EVERY_S = 0.1


def channel(room: str) -> str:
    return CHANNEL.format(room)


@dataclass(frozen=True, slots=True)
class Frame:
    room: str
    token: int
    seq: int
    timestamp: int
    duration: int
    sent_at: float
    payload: bytes


def encode_frame(frame: Frame) -> bytes:
    packed: bytes = msgpack.packb(
        [
            FRAME_VERSION,
            frame.room,
            frame.token,
            frame.seq,
            frame.timestamp,
            frame.duration,
            frame.sent_at,
            frame.payload,
        ],
        use_bin_type=True,
    )
    return packed


def decode_frame(raw: bytes) -> Frame | None:
    """The frame, or None for anything that is not one."""
    try:
        items = msgpack.unpackb(raw, raw=False)
    except (ValueError, msgpack.UnpackException):
        return None
    if not isinstance(items, list) or len(items) != 8 or items[0] != FRAME_VERSION:
        return None
    _, room, token, seq, timestamp, duration, sent_at, payload = items
    if not (isinstance(room, str) and isinstance(payload, bytes)):
        return None
    if not all(isinstance(v, int) for v in (token, seq, timestamp, duration)):
        return None
    return Frame(room, token, seq, timestamp, duration, float(sent_at), payload)


# --- owner side -------------------------------------------------------------
class _Owned:
    __slots__ = ("feed", "room", "seq", "tap", "token")

    def __init__(self, room: str, token: int) -> None:
        self.room = room
        self.token = token
        self.seq = 0
        self.feed: Any = None  # the Feed the tap is on
        self.tap: Callable[[SharedPacket], None] | None = None


class Relay:
    """Publishes the room feed of every room this process owns."""

    def __init__(
        self,
        transport: Transport,
        engine: MediaEngine,
        wall: Callable[[], float],
        queue_size: int = RELAY_QUEUE,
        batch: int = RELAY_BATCH,
    ) -> None:
        self._transport = transport
        self._engine = engine
        self._wall = wall
        self.owned: dict[str, _Owned] = {}
        self._queue: deque[tuple[Frame, str]] = deque()
        self._queue_size = queue_size
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batch = batch  # packets per round trip at most (1: one each)
        self.published = 0
        self.round_trips = 0
        self.dropped = 0  # queue full: the oldest packet went
        self.failed = 0  # Redis refused

    def start(self) -> None:
        self._task = asyncio.create_task(self._publish(), name="edge-relay")

    async def aclose(self) -> None:
        for room in list(self.owned):
            self.disown(room)
        if self._task is not None:
            # The flag ends the loop even if the cancellation is lost: Python
            # 3.11's asyncio.timeout (inside redis-py) may turn a cancel that
            # meets its deadline into a TimeoutError, which the loop survives.
            self._closing = True
            self._ready.set()
            self._task.cancel()
            await asyncio.wait([self._task], timeout=CLOSE_WAIT_S)

    def own(self, room: str, token: int) -> None:
        """This process holds room's media lease with `token` (taken or renewed)."""
        owned = self.owned.get(room)
        if owned is None:
            owned = self.owned[room] = _Owned(room, token)
            logger.info("room %s: relaying to edges (token %d)", room, token)
        owned.token = token
        media = self._engine.rooms.get(room)
        feed = media.feeds[None] if media is not None else None
        if feed is not owned.feed:  # the room's media opened again: tap its new feed
            self._untap(owned)
            if feed is not None:
                owned.tap = self._tap_for(owned)
                feed.taps.append(owned.tap)
                owned.feed = feed

    def disown(self, room: str) -> None:
        owned = self.owned.pop(room, None)
        if owned is not None:
            self._untap(owned)
            logger.info("room %s: no longer relaying (token %d)", room, owned.token)

    def token(self, room: str) -> int | None:
        owned = self.owned.get(room)
        return owned.token if owned is not None else None

    @staticmethod
    def _untap(owned: _Owned) -> None:
        if owned.feed is not None and owned.tap in owned.feed.taps:
            owned.feed.taps.remove(owned.tap)
        owned.feed = owned.tap = None

    def _tap_for(self, owned: _Owned) -> Callable[[SharedPacket], None]:
        name = channel(owned.room)

        def tap(packet: SharedPacket) -> None:  # on the tick: only queue
            owned.seq += 1
            frame = Frame(
                owned.room,
                owned.token,
                owned.seq,
                packet.timestamp,
                FRAME_SAMPLES,
                self._wall(),
                packet.payload,
            )
            # the bound is per owned room: 50 rooms queue 50 times one room's
            if len(self._queue) >= self._queue_size * max(1, len(self.owned)):
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((frame, name))
            self._ready.set()

        return tap

    async def _publish(self) -> None:
        """Everything queued since the last round trip goes in the next one:
        the ticker queues one packet per owned room per tick, so a process
        owning many rooms pays one round trip per tick, not one per room."""
        while not self._closing:
            await self._ready.wait()
            self._ready.clear()
            while self._queue and not self._closing:
                size = min(len(self._queue), self.batch)
                batch = [self._queue.popleft() for _ in range(size)]
                messages = [(name, encode_frame(frame)) for frame, name in batch]
                try:
                    if size == 1:
                        await self._transport.publish(*messages[0])
                    else:
                        await self._transport.publish_many(messages)
                    self.published += size
                    self.round_trips += 1
                except (RedisError, RedisClusterException, OSError) as exc:
                    self.failed += size
                    if self.failed % 500 < size:
                        logger.warning("edge relay: publish failed: %r", exc)


# --- edge side --------------------------------------------------------------
class EdgeFeeds:
    """Subscriptions of the rooms with edge listeners here, and their fencing."""

    def __init__(self, transport: Transport, engine: MediaEngine, store: RoomStore) -> None:
        self._transport = transport
        self._engine = engine
        self._store = store
        self.rooms: set[str] = set()
        self._joining: dict[str, int] = {}  # room -> WHEP offers being answered as edges
        self._reading: dict[str, asyncio.Task[None]] = {}
        self.frames = 0
        self.fenced = 0

    async def open(self) -> None:
        await self._transport.open(self._deliver)
        self._engine.on_edge_gone = self.leave

    async def aclose(self) -> None:
        self._engine.on_edge_gone = None
        for task in list(self._reading.values()):
            task.cancel()
        await self._transport.close()

    async def join(self, room: str) -> None:
        """Listen to the room's relay (once per room); returns when Redis
        confirmed, so nothing published from then on is missed. Every join
        is followed by `joined` once its WHEP offer is answered or refused."""
        self._joining[room] = self._joining.get(room, 0) + 1
        if room in self.rooms:
            return
        self.rooms.add(room)
        waiter = self._transport.subscribe(channel(room))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), SUBSCRIBE_WAIT_S)
        except TimeoutError:
            logger.warning("edge: subscription to room %s not confirmed in time", room)

    def leave(self, room: str) -> None:
        """The room's last edge listener here left (kept while another
        listener's offer is still being answered)."""
        if room in self.rooms and not self._joining.get(room):
            self.rooms.discard(room)
            self._transport.unsubscribe(channel(room))
            logger.info("edge: room %s has no more listeners here", room)

    def joined(self, room: str) -> None:
        """A WHEP offer of the room is answered or refused: leave the room if
        no edge listener is there and no other offer is under way."""
        left = self._joining.get(room, 0) - 1
        if left > 0:
            self._joining[room] = left
        else:
            self._joining.pop(room, None)
        if room not in self._engine.edges:
            self.leave(room)

    async def read_lease(self, room: str) -> None:
        lease = await media_lease.current(self._store, room)
        edge = self._engine.edges.get(room)
        if lease is None or edge is None:
            return
        if lease.token > edge.lease_token:
            edge.lease_token = lease.token
            logger.info("edge: room %s now fenced at token %d", room, lease.token)
        elif lease.token < edge.highest:
            # tokens only grow, so the fence counter itself went back (an
            # external Redis lost it): follow the lease, or hear nothing ever
            logger.warning("edge: room %s fence went back to %d", room, lease.token)
            edge.refence(lease.token)

    def _read_soon(self, room: str) -> None:
        if room not in self._reading:
            task = asyncio.create_task(self._read(room))
            self._reading[room] = task

    async def _read(self, room: str) -> None:
        try:
            await self.read_lease(room)
        except (RedisError, OSError) as exc:
            logger.warning("edge: reading the lease of room %s failed: %r", room, exc)
        finally:
            self._reading.pop(room, None)

    async def refresh(self, now: float) -> None:
        """Scheduled: every edge room's fence follows the lease."""
        for room in list(self._engine.edges):
            await self.read_lease(room)

    async def _deliver(self, raw: bytes) -> None:
        frame = decode_frame(raw)
        if frame is None:
            return
        edge = self._engine.edges.get(frame.room)
        if edge is None:
            return
        self.frames += 1
        if frame.token > edge.highest:
            self._read_soon(frame.room)  # a new owner: read the lease it holds
        if not edge.receive(frame.token, frame.seq, frame.payload, frame.timestamp):
            self.fenced += 1


# --- placement --------------------------------------------------------------
@dataclass(frozen=True)
class Place:
    node: str
    worker: str
    url: str
    region: str
    count: int
    cap: int


class LoadBoard:
    """Per-process WHEP listener counts shared in Redis (stamped; stale ones
    are ignored and the whole hash expires when nobody writes it)."""

    def __init__(self, app: web.Application, engine: MediaEngine) -> None:
        self._app = app
        self._engine = engine
        settings = app[SETTINGS]
        self.me = Place(
            settings.node,
            settings.worker,
            settings.node_url,
            settings.region,
            0,
            engine.caps.limits.per_process,
        )

    @property
    def field(self) -> str:
        return f"{self.me.node}/{self.me.worker}"

    async def publish(self, now: float) -> None:
        entry = {
            "node": self.me.node,
            "worker": self.me.worker,
            "url": self.me.url,
            "region": self.me.region,
            "count": self._engine.caps.total,
            "cap": self.me.cap,
            "at": now,
        }
        redis = self._app[REDIS]
        await redis.hset(LOAD_KEY, self.field, json.dumps(entry))
        await redis.expire(LOAD_KEY, int(LOAD_FRESH_S * 10))

    async def withdraw(self) -> None:
        await self._app[REDIS].hdel(LOAD_KEY, self.field)

    async def places(self, now: float) -> list[Place]:
        """Every other fresh process with room for one more listener."""
        found = await self._app[REDIS].hgetall(LOAD_KEY)
        places = []
        for name, value in found.items():
            key = name.decode() if isinstance(name, bytes) else str(name)
            if key == self.field:
                continue
            try:
                entry = json.loads(value)
                place = Place(
                    str(entry["node"]),
                    str(entry["worker"]),
                    str(entry["url"]),
                    str(entry.get("region", "")),
                    int(entry["count"]),
                    int(entry["cap"]),
                )
                fresh = now - float(entry["at"]) <= LOAD_FRESH_S
            except (ValueError, KeyError, TypeError):
                continue
            if fresh and place.count < place.cap:
                places.append(place)
        return places

    def choose(self, places: list[Place]) -> Place | None:
        """A worker of this node first (handed over inside the node), then the
        nodes of this region, then any: the least loaded of the first group."""
        me = self.me

        def rank(place: Place) -> tuple[int, float]:
            group = 0 if place.node == me.node else 1 if place.region == me.region else 2
            return group, place.count / max(place.cap, 1)

        return min(places, key=rank) if places else None


# --- the owner side's link ------------------------------------------------
class OwnerSync:
    """Tells the relay which rooms this process owns: the rooms whose media
    lease `Ownership` (server/audio/ownership.py) holds and may still serve
    (its last renewal younger than the lease's ttl), read every
    `SYNC_EVERY_S` (no Redis: its own state)."""

    def __init__(self, ownership: Ownership, relay: Relay) -> None:
        self._ownership = ownership
        self._relay = relay

    def sync(self) -> None:
        ownership, relay = self._ownership, self._relay
        serving = {
            room: held.token
            for room, held in list(ownership.held.items())
            if ownership.may_serve(room)
        }
        for room, token in serving.items():
            relay.own(room, token)
        for room in [r for r in relay.owned if r not in serving]:
            relay.disown(room)

    async def run(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:
                logger.exception("edge relay: syncing the owned rooms failed")
            await asyncio.sleep(SYNC_EVERY_S)


def sounds_here(engine: MediaEngine, room: str) -> bool:
    """Whether this process makes the room's sound (publishers or a tone here)."""
    media = engine.rooms.get(room)
    return media is not None and bool(media.publishers or media.mixer.tone is not None)


def is_mine(lease: media_lease.MediaLease, holder: str) -> bool:
    """Whether the lease's holder is this process: by its holder token, not
    by the names it announced (a restarted worker has its predecessor's names
    while the dead one's lease runs out)."""
    return lease.holder == holder


# --- metrics ----------------------------------------------------------------
class EdgeCollector(Collector):
    """The relay and the edges of this process, read at scrape time."""

    def __init__(self, relay: Relay, feeds: EdgeFeeds, engine: MediaEngine) -> None:
        self.relay, self.feeds, self.engine = relay, feeds, engine

    def collect(self) -> Iterator[Metric]:
        relayed = CounterMetricFamily(
            "droproom_media_relayed_packets",
            "Packets of owned rooms given to the relay, by outcome",
            labels=["outcome"],
        )
        relayed.add_metric(["published"], self.relay.published)
        relayed.add_metric(["dropped"], self.relay.dropped)
        relayed.add_metric(["failed"], self.relay.failed)
        edge = CounterMetricFamily(
            "droproom_media_edge_packets",
            "Relayed packets received by this process's edge rooms, by outcome",
            labels=["outcome"],
        )
        edge.add_metric(["fed"], self.feeds.frames - self.feeds.fenced)
        edge.add_metric(["fenced"], self.feeds.fenced)
        rooms = GaugeMetricFamily(
            "droproom_media_rooms", "Rooms whose media this process owns or edges", labels=["as"]
        )
        rooms.add_metric(["owner"], len(self.relay.owned))
        rooms.add_metric(["edge"], len(self.engine.edges))
        return iter([relayed, edge, rooms])


# --- the app ----------------------------------------------------------------
@dataclass
class Edges:
    relay: Relay
    feeds: EdgeFeeds
    board: LoadBoard
    owner: OwnerSync


EDGES: web.AppKey[Edges] = web.AppKey("edges", Edges)


def enabled(settings: Settings) -> bool:
    """The cascade runs where Socket.IO relays too: several processes, one Redis."""
    return bool(settings.multi_node and settings.redis_url)


def edges_ctx(engine_of: Callable[[web.Application], MediaEngine]) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        if not enabled(settings):
            yield
            return
        assert settings.redis_url is not None
        engine = engine_of(app)
        cluster = settings.redis_cluster
        relay_transport = transport_for(settings.redis_url, cluster=cluster)
        await relay_transport.open(_ignore)
        relay = Relay(relay_transport, engine, app[SCHEDULER].clock)
        relay.start()
        feeds = EdgeFeeds(transport_for(settings.redis_url, cluster=cluster), engine, app[ROOMS])
        await feeds.open()
        board = LoadBoard(app, engine)
        owner = OwnerSync(app[OWNERSHIP], relay)
        syncing = asyncio.create_task(owner.run(), name="edge-relay-owned")
        app[EDGES] = Edges(relay, feeds, board, owner)
        collector = EdgeCollector(relay, feeds, engine)
        app[METRICS].registry.register(collector)
        scheduler = app[SCHEDULER]
        scheduler.every(LEASE_READ_S, feeds.refresh)
        scheduler.every(LOAD_EVERY_S, board.publish)
        yield
        app[METRICS].registry.unregister(collector)
        syncing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await syncing
        with contextlib.suppress(RedisError, OSError):
            await board.withdraw()
        await relay.aclose()
        await relay_transport.close()
        await feeds.aclose()

    return ctx


async def _ignore(raw: bytes) -> None:
    """The relay's transport only publishes."""
