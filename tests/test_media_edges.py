"""The cascade inside one test process: several real servers (each its own
app, media engine and Redis connections) on one Redis, as nodes would be.
A listener of a room owned elsewhere is served as an edge fed by the
owner's relay; a stale owner's packets are fenced off; a speaker on the
stage is sent to the owner; a full process places the listener on the
least loaded node of its region, and 429 only when nobody can take it.
(The same across real `serve` processes, with the owner killed:
tests/test_media_nodes.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from media.config import MediaConfig
from media.engine import MediaEngine
from media.mixer import OpusEncoder
from media.packets import FRAME_SAMPLES
from rooms import keys, media_lease
from rooms.store import RoomStore
from server.appkeys import ROOMS
from server.audio.edges import (
    EDGES,
    LOAD_KEY,
    EdgeFeeds,
    Frame,
    Relay,
    channel,
    decode_frame,
    encode_frame,
)
from server.audio.ownership import OWNERSHIP
from server.audio.routes import MEDIA
from server.redis_client import connect
from server.relay.transport import Transport, transport_for
from tests.harness import Harness, is_cluster, redis_client, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.media_helpers import (
    AudioListener,
    TonePublisher,
    abandoned_offer,
    band_energy,
    wait_connected,
)

pytestmark = [pytest.mark.slow]
ROOM = "cascade"
SDP = "application/sdp"

Start = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start(tmp_path: Path, redis_url: str) -> AsyncIterator[Start]:
    """Starts servers on the test's Redis as separate nodes (stopped at the end)."""
    started: list[Harness] = []

    async def starter(**overrides: Any) -> Harness:
        n = len(started)
        settings = make_settings(
            tmp_path / f"node{n}", redis_url, multi_node=True, node=f"n{n}", **overrides
        )
        server = await start_server(settings)
        started.append(server)
        if n == 0:
            await server.create_room(id=ROOM, title="cascade")
        return server

    yield starter
    for server in reversed(started):
        await stop_server(server)


@pytest.fixture
async def relay(redis_url: str) -> AsyncIterator[Transport]:
    """A raw publisher on the media channels (a forged owner)."""

    async def ignore(raw: bytes) -> None:
        pass

    transport = transport_for(redis_url, cluster=is_cluster(redis_url))
    await transport.open(ignore)
    yield transport
    await transport.close()


class Signal:
    """WHIP/WHEP client side: POST the offer; the answer, status and Location."""

    def __init__(self, server: Harness, kind: str, token: str) -> None:
        self.url = f"{server.url}/{kind}/{ROOM}"
        self.token = token
        self.status = 0
        self.location = ""

    async def __call__(self, offer: str) -> str:
        status, body, location = await post(self.url, self.token, offer)
        self.status, self.location = status, location
        if status != 201:
            raise PermissionError(f"{status}: {body}")
        return body


async def post(url: str, token: str, offer: str) -> tuple[int, str, str]:
    headers = {"Content-Type": SDP, "Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=offer, headers=headers, allow_redirects=False) as r,
    ):
        return r.status, await r.text(), r.headers.get("Location", "")


async def listen(server: Harness, identity: str, role: str = "listener") -> AudioListener:
    listener = await AudioListener.start(Signal(server, "whep", server.token(ROOM, identity, role)))
    await wait_connected(listener.pc)
    return listener


async def lease_of(server: Harness) -> media_lease.MediaLease:
    async with asyncio.timeout(10):
        while True:
            lease = await media_lease.current(server.app[ROOMS], ROOM)
            if lease is not None:
                return lease
            await asyncio.sleep(0.05)


async def heard(listener: AudioListener, seconds: float = 1.5) -> Any:
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(seconds)
    return listener.audio_since(t0)


def tone(freq: float) -> Callable[[int], bytes]:
    """Opus frames of a sine tone, one per call with its frame number."""
    encoder = OpusEncoder()

    def frame(n: int) -> bytes:
        t = (np.arange(FRAME_SAMPLES) + n * FRAME_SAMPLES) / 48000
        return encoder.encode((0.3 * np.sin(2 * math.pi * freq * t)).astype(np.float32))

    return frame


class ForgedOwner:
    """Sends a tone on the room's media channel as the holder of `token`."""

    def __init__(self, relay: Transport, token: int, freq: float) -> None:
        self.relay, self.token, self.frame = relay, token, tone(freq)
        self.n = 0

    async def send(self) -> None:
        self.n += 1
        n = self.n
        frame = Frame(ROOM, self.token, n, n * FRAME_SAMPLES, FRAME_SAMPLES, 0.0, self.frame(n))
        await self.relay.publish(channel(ROOM), encode_frame(frame))


async def pace(owners: list[ForgedOwner], seconds: float) -> None:
    """Each owner sends one frame every 20 ms for `seconds`."""
    for _ in range(int(seconds / 0.02)):
        for owner in owners:
            await owner.send()
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def sending(owners: list[ForgedOwner]) -> AsyncIterator[None]:
    task = asyncio.create_task(pace(owners, 60))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def take_lease(server: Harness, holder: str, endpoint: dict[str, Any]) -> int:
    store = server.app[ROOMS]
    old = await media_lease.current(store, ROOM)
    if old is not None:
        await media_lease.give_up(store, ROOM, old.holder, old.token)
    lease = await media_lease.hold(store, ROOM, holder, endpoint, ttl_s=60)
    assert lease.held
    return lease.token


ELSEWHERE = {"node": "elsewhere", "worker": "w1", "url": "http://127.0.0.1:9", "region": ""}


# --- tests ------------------------------------------------------------------
async def test_listener_of_a_room_owned_elsewhere_hears_the_owner_as_an_edge(
    start: Start,
) -> None:
    owner, edge = await start(), await start()
    whip = Signal(owner, "whip", owner.token(ROOM, "hostess", "host"))
    publisher = await TonePublisher.start(660, whip)
    await wait_connected(publisher.pc)
    lease = await lease_of(owner)
    assert lease.endpoint["node"] == owner.settings.node
    listener = await listen(edge, "lenny")
    await asyncio.sleep(0.5)
    assert band_energy(await heard(listener), 660) > 0.8
    engine = edge.app[MEDIA]
    assert ROOM in engine.edges and ROOM not in engine.rooms  # no mixing on the edge
    # the edge's subscription goes with its last listener
    session = engine.sessions[(await _only_listen_session(edge))]
    await engine.close(session.id, "test")
    assert ROOM not in engine.edges
    await publisher.close()
    await listener.close()


async def test_a_listener_who_came_before_anyone_owned_the_room_hears_its_owner(
    start: Start,
) -> None:
    early, owner = await start(), await start()
    listener = await listen(early, "lenny")  # nobody publishes yet
    assert ROOM in early.app[MEDIA].edges
    whip = Signal(owner, "whip", owner.token(ROOM, "hostess", "host"))
    publisher = await TonePublisher.start(550, whip)
    await wait_connected(publisher.pc)
    await lease_of(owner)
    await asyncio.sleep(0.5)
    assert band_energy(await heard(listener), 550) > 0.8
    await publisher.close()
    await listener.close()


async def _only_listen_session(server: Harness) -> str:
    engine = server.app[MEDIA]
    (found,) = [s.id for s in engine.sessions.values() if s.kind == "listen"]
    return found


async def test_a_stale_owner_is_not_heard(start: Start, relay: Transport) -> None:
    edge = await start()
    first = await take_lease(edge, "ghost-1", ELSEWHERE)
    listener = await listen(edge, "lenny")
    stale = ForgedOwner(relay, first, 440)
    async with sending([stale]):
        await asyncio.sleep(0.5)
        assert band_energy(await heard(listener), 440) > 0.8  # the owner is heard
    # the lease moves; the old owner keeps sending beside the new one
    second = await take_lease(edge, "ghost-2", ELSEWHERE)
    assert second > first
    fresh = ForgedOwner(relay, second, 880)
    async with sending([stale, fresh]):
        await asyncio.sleep(0.5)
        audio = await heard(listener)
    assert band_energy(audio, 880) > 0.8 and band_energy(audio, 440) < 0.05
    # the lease moves again and only the fenced owner sends: the edge reads
    # the lease within seconds and stops feeding its packets
    await take_lease(edge, "ghost-3", ELSEWHERE)
    async with sending([fresh]):
        await asyncio.sleep(3.0)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(1.0)
        assert listener.rate(t0, loop.time()) == 0
    await listener.close()
    async with aiohttp.ClientSession() as http, http.get(edge.url + "/metrics") as r:
        scraped = await r.text()
    fenced = re.search(r'droproom_media_edge_packets_total\{outcome="fenced"\} (\S+)', scraped)
    assert fenced is not None and float(fenced.group(1)) > 50


async def test_a_speaker_on_stage_is_sent_to_the_owner_node(start: Start) -> None:
    edge = await start()
    await take_lease(edge, "ghost", ELSEWHERE)
    offer = await abandoned_offer()
    url = f"{edge.url}/whep/{ROOM}"
    status, _, location = await post(url, edge.token(ROOM, "hostess", "host"), offer)
    assert status == 307 and location == f"{ELSEWHERE['url']}/whep/{ROOM}"
    status, _, location = await post(url, edge.token(ROOM, "lenny", "listener"), offer)
    assert status == 201 and location.startswith(f"{edge.url}/whep/{ROOM}/")


async def test_a_lease_naming_this_worker_but_held_by_its_dead_predecessor_is_not_ours(
    start: Start,
) -> None:
    """A restarted worker has its predecessor's names while the dead one's
    lease runs out: its listeners are edges waiting for the next owner, not
    a mix here that nobody would ever feed."""
    edge = await start()
    names = {"node": edge.settings.node, "worker": edge.settings.worker, "url": edge.url}
    await take_lease(edge, "dead-predecessor", names | {"region": ""})
    listener = await listen(edge, "lenny")
    engine = edge.app[MEDIA]
    assert ROOM in engine.edges and ROOM not in engine.rooms
    await listener.close()


async def test_a_mix_opened_here_without_the_lease_closes_when_another_process_takes_it(
    start: Start,
) -> None:
    """The host listens before anyone publishes (a mix made here, no lease);
    then the room's publishers go to another process: the mix here would
    stay silent for good, so its sessions close and the page comes back."""
    here = await start()
    host = await listen(here, "hostess", "host")
    engine = here.app[MEDIA]
    assert ROOM in engine.rooms and ROOM not in engine.edges
    assert await media_lease.current(here.app[ROOMS], ROOM) is None
    await take_lease(here, "another-process", ELSEWHERE)
    async with asyncio.timeout(10):  # the next renewal round (ttl / 3) sees it
        while ROOM in engine.rooms or engine.sessions:
            await asyncio.sleep(0.1)
    await host.close()


async def test_a_refused_offer_never_unsubscribes_a_room_another_listener_is_joining(
    tmp_path: Path, redis_url: str
) -> None:
    """Two listeners' offers of one room under way at once (a go-live rush):
    the first is refused (a cap) before the second's edge room exists. The
    room's relay subscription must stay for the second, or it hears nothing."""
    engine = MediaEngine(MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), record=False))
    client = connect(redis_url, cluster=is_cluster(redis_url), decode_responses=True)
    feeds = EdgeFeeds(
        transport_for(redis_url, cluster=is_cluster(redis_url)), engine, RoomStore(client)
    )
    await feeds.open()
    try:
        await feeds.join(ROOM)  # offer A
        await feeds.join(ROOM)  # offer B
        feeds.joined(ROOM)  # A refused: B is still being answered
        assert ROOM in feeds.rooms
        feeds.leave(ROOM)  # the room's last edge listener left meanwhile
        assert ROOM in feeds.rooms
        feeds.joined(ROOM)  # B refused too: nobody is left to hear it
        assert ROOM not in feeds.rooms
    finally:
        await feeds.aclose()
        await engine.aclose()
        await client.aclose()


class _CancelBecomesTimeout:
    """A relay transport whose publish hangs and, when cancelled, raises
    redis-py's TimeoutError: what Python 3.11's asyncio.timeout inside
    redis-py does when a cancel meets its deadline (the cancel is lost)."""

    async def open(self, deliver: Any) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, channel: str, data: bytes) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisTimeoutError("Timeout reading from socket") from None

    async def publish_many(self, messages: Any) -> None:
        await self.publish(*messages[0])

    def subscribe(self, channel: str) -> asyncio.Future[None]:
        raise NotImplementedError

    def unsubscribe(self, channel: str) -> None:
        raise NotImplementedError


async def test_the_relay_stops_even_when_redis_turns_its_cancel_into_an_error(
    tmp_path: Path,
) -> None:
    """Shutdown must end: a publisher loop that survives its cancel (it
    counts the error and goes on) hung a whole test run's teardown."""
    engine = MediaEngine(MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), record=False))
    relay = Relay(_CancelBecomesTimeout(), engine, time.time)
    relay.start()
    relay.own(ROOM, 1)
    frame = Frame(ROOM, 1, 1, 0, FRAME_SAMPLES, time.time(), b"x")
    relay._queue.extend([(frame, channel(ROOM))] * 3)
    relay._ready.set()
    await asyncio.sleep(0.05)  # the publisher waits in publish
    async with asyncio.timeout(10):
        await relay.aclose()
    await engine.aclose()


async def _boards(server: Harness, count: int) -> None:
    """Until `count` processes' loads are in Redis."""
    redis = server.app[ROOMS].redis
    async with asyncio.timeout(10):
        while len(await redis.hkeys(LOAD_KEY)) < count:
            await asyncio.sleep(0.1)


async def test_a_full_process_sends_the_listener_to_a_node_of_its_region(start: Start) -> None:
    full = await start(whep_per_process=1, region="eu")
    far = await start(region="us")
    near = await start(region="eu")
    # the far node is the least loaded, the near one carries a listener
    offer = await abandoned_offer()
    token = full.token(ROOM, "lenny", "listener")
    assert (await post(f"{near.url}/whep/{ROOM}", token, offer))[0] == 201
    assert (await post(f"{full.url}/whep/{ROOM}", token, offer))[0] == 201  # now full
    await _boards(full, 3)
    await asyncio.sleep(2.5)  # the counts as they are now
    status, _, location = await post(f"{full.url}/whep/{ROOM}", token, offer)
    assert status == 307 and location == f"{near.url}/whep/{ROOM}?placed=1"
    status, _, _ = await post(location, token, offer)
    assert status == 201
    assert far.app[MEDIA].caps.total == 0


async def test_429_only_when_no_process_can_take_the_listener(start: Start) -> None:
    a = await start(whep_per_process=1)
    b = await start(whep_per_process=1)
    offer = await abandoned_offer()
    token = a.token(ROOM, "lenny", "listener")
    assert (await post(f"{a.url}/whep/{ROOM}", token, offer))[0] == 201
    assert (await post(f"{b.url}/whep/{ROOM}", token, offer))[0] == 201
    await _boards(a, 2)
    await asyncio.sleep(2.5)
    status, body, _ = await post(f"{a.url}/whep/{ROOM}", token, offer)
    assert status == 429 and "rate_limited" in body


async def test_edge_listeners_of_an_owner_that_loses_the_room_stay_and_hear_the_new_owner(
    start: Start, relay: Transport
) -> None:
    server = await start()
    listener = await listen(server, "lenny")  # an edge: nobody owns the room yet
    whip = Signal(server, "whip", server.token(ROOM, "hostess", "host"))
    publisher = await TonePublisher.start(440, whip)
    await wait_connected(publisher.pc)
    await lease_of(server)
    await asyncio.sleep(0.5)
    assert band_energy(await heard(listener), 440) > 0.8  # through its own relay
    # another process takes the room (this one was paused past its lease)
    store = server.app[ROOMS]
    await store.redis.delete(keys.media_lease(ROOM))
    token = (await media_lease.hold(store, ROOM, "ghost", ELSEWHERE, ttl_s=60)).token
    ownership = server.app[OWNERSHIP]
    async with asyncio.timeout(10):
        while ROOM in ownership.held:  # its next renewal finds the room lost
            await asyncio.sleep(0.05)
    async with sending([ForgedOwner(relay, token, 880)]):
        await asyncio.sleep(0.5)
        audio = await heard(listener)
    assert band_energy(audio, 880) > 0.8
    await publisher.close()
    await listener.close()


async def test_a_stalled_relay_never_holds_the_room_and_drops_past_its_bound(
    start: Start, redis_url: str
) -> None:
    if is_cluster(redis_url):
        pytest.skip("CLIENT PAUSE of one redis-server")
    owner = await start(media_lease_ttl_s=30.0)  # the pause must not cost the lease
    whip = Signal(owner, "whip", owner.token(ROOM, "hostess", "host"))
    publisher = await TonePublisher.start(440, whip)
    await wait_connected(publisher.pc)
    await lease_of(owner)
    listener = await listen(owner, "lenny")  # heard from the owner's own mix
    relay_of = owner.app[EDGES].relay
    async with asyncio.timeout(5):
        while ROOM not in relay_of.owned:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    pauser = redis_client(redis_url)
    await pauser.execute_command("CLIENT", "PAUSE", "9000", "WRITE")  # PUBLISH waits
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(8.0)
    # the room went on for its listeners while the relay could not publish
    assert listener.rate(t0, loop.time()) > 45
    await pauser.execute_command("CLIENT", "UNPAUSE")
    await pauser.aclose()
    # 8 s of packets is past the relay's bound (about 5 s, and a batch in
    # flight): the oldest went, counted
    assert relay_of.dropped >= 40
    # the backlog went out a pipeline at a time, not a round trip per packet
    published, trips = relay_of.published, relay_of.round_trips
    async with asyncio.timeout(5):
        while relay_of.published < published + 200:
            await asyncio.sleep(0.05)
    assert relay_of.round_trips - trips < (relay_of.published - published) / 4
    await publisher.close()
    await listener.close()


async def test_a_backlog_of_many_rooms_reaches_the_edges_whole_and_in_order(
    redis_url: str, relay: Transport
) -> None:
    """The relay publishes what queued since its last round trip in one
    pipeline: packets of rooms on different shards (a Cluster) all arrive,
    each room's in the order sent."""
    heard: dict[str, list[int]] = {}

    async def deliver(raw: bytes) -> None:
        frame = decode_frame(raw)
        assert frame is not None
        heard.setdefault(frame.room, []).append(frame.seq)

    edge = transport_for(redis_url, cluster=is_cluster(redis_url))
    await edge.open(deliver)
    rooms = [f"backlog{i}" for i in range(6)]
    try:
        await asyncio.gather(*(edge.subscribe(channel(room)) for room in rooms))
        sent = [
            (channel(room), encode_frame(Frame(room, 1, seq, seq * 960, 960, time.time(), b"x")))
            for seq in range(20)
            for room in rooms
        ]
        await relay.publish_many(sent)
        async with asyncio.timeout(5):
            while sum(len(seqs) for seqs in heard.values()) < len(sent):
                await asyncio.sleep(0.02)
    finally:
        await edge.close()
    assert heard == {room: list(range(20)) for room in rooms}
