"""The owner side of a room's media with real processes and real aiortc
peers: one process holds the room's media lease and every WHIP publish
reaches it (handed between the workers of a node, 307 between nodes);
PATCH/DELETE of a session reach the session's worker; a killed owner's lease
moves with a higher token; a paused owner that lost the lease stops
recording."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rooms import keys, media_lease
from rooms.media_lease import MediaLease
from rooms.store import RoomStore
from server import tokens
from server.appkeys import SETTINGS
from server.audio.ownership import OWNERSHIP
from server.audio.routes import HANDED, MEDIA
from server.config import Settings
from server.redis_client import connect
from server.roles import Role
from tests.harness import ADMIN_KEY, SECRET, Harness
from tests.harness import test_settings as make_settings
from tests.media_helpers import AudioListener, TonePublisher, band_energy, wait_connected
from tests.serve_helpers import Served, clean_env, serving
from tests.test_media_v2 import split_candidates

pytestmark = [pytest.mark.slow, pytest.mark.allow_blocking]
ROOM = "owned"
SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
TTL_S = 1.5


Node = Served


def token(identity: str, role: Role = Role.HOST) -> str:
    return tokens.mint(
        SECRET, room=ROOM, identity=identity, role=role, name=identity, ttl_s=600, now=time.time()
    )


def _env(redis_url: str, cluster: bool) -> dict[str, str]:
    env = clean_env()
    env |= {
        "DROPROOM_RESTART_BACKOFF_S": "0.2",
        "DROPROOM_ICE_HOSTS": "127.0.0.1",
        "DROPROOM_MEDIA_LEASE_TTL_S": str(TTL_S),
        "REDIS_URL": redis_url,
        "DROPROOM_MULTI_NODE": "1",  # several nodes share the store (docs/operations.md)
    }
    if cluster:
        env["DROPROOM_REDIS_CLUSTER"] = "1"
    return env


@contextlib.asynccontextmanager
async def started(data: Path, workers: int, env: dict[str, str]) -> AsyncIterator[Node]:
    """`serve --workers N` on a free port, stopped by its pid at the end."""
    async with serving(data, workers=workers, env=env, kind=Served) as node:
        yield node


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str


async def send(
    method: str,
    url: str,
    *,
    via: Path | None = None,
    body: str = "",
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a new connection: by TCP (the kernel picks the worker)
    or on a worker's own unix socket `via` (that worker serves or hands it)."""
    connector: aiohttp.BaseConnector = (
        aiohttp.UnixConnector(path=str(via)) if via else aiohttp.TCPConnector(force_close=True)
    )
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.request(method, url, data=body, headers=headers, allow_redirects=False) as resp,
    ):
        return Answer(resp.status, dict(resp.headers), await resp.text())


class Whip:
    """An exchange (offer -> answer) through POST `url`, keeping the session URL."""

    def __init__(self, url: str, identity: str, via: Path | None = None, kind: str = "whip"):
        self.url, self.via, self.kind = url, via, kind
        self.token = token(identity, Role.HOST if kind == "whip" else Role.LISTENER)
        self.location = ""
        self.answers: list[Answer] = []

    def headers(self, content_type: str = SDP) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": content_type}

    async def __call__(self, offer: str) -> str:
        answer = await send("POST", self.url, via=self.via, body=offer, headers=self.headers())
        self.answers.append(answer)
        assert answer.status == 201, (answer.status, answer.text)
        self.location = answer.headers["Location"]
        return answer.text


def session_worker(location: str) -> str:
    return location.rsplit("/", 1)[1].partition(".")[0]


async def create_room(node: Node) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{node.url}/api/v1/rooms", json={"id": ROOM, "title": "owned"}, headers=headers
        ) as resp,
    ):
        assert resp.status in (200, 201), await resp.text()


@pytest.fixture
async def store(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[RoomStore]:
    client = connect(
        redis_url, cluster=bool(request.config.getoption("--redis-cluster")), decode_responses=True
    )
    await client.exists(keys.NODES)
    yield RoomStore(client)
    await client.aclose()


@pytest.fixture
def env(redis_url: str, request: pytest.FixtureRequest) -> dict[str, str]:
    return _env(redis_url, bool(request.config.getoption("--redis-cluster")))


async def lease_of(store: RoomStore) -> MediaLease:
    lease = await media_lease.current(store, ROOM)
    assert lease is not None, "nobody holds the room's media"
    return lease


async def until(predicate: Any, limit_s: float = 10.0, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return False


async def hears(listener: AudioListener, *freqs: float, share: float = 0.2) -> bool:
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(0.3)

    def all_there() -> bool:
        pcm = listener.audio_since(t0)
        return pcm.size > 24000 and all(band_energy(pcm, f) > share for f in freqs)

    return await until(all_there, limit_s=10)


# --- one process --------------------------------------------------------------
@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    # a long ttl: a lease given up is gone long before it could lapse
    return make_settings(tmp_path / "data", redis_url, media_lease_ttl_s=9.0)


async def test_the_lease_is_held_while_the_rooms_media_is_open_and_given_up_when_it_closes(
    server: Harness, store: RoomStore
) -> None:
    await server.create_room(id=ROOM, title="owned")
    whip = Whip(f"{server.url}/whip/{ROOM}", "alice")
    alice = await TonePublisher.start(440, whip)
    await wait_connected(alice.pc)
    lease = await lease_of(store)
    assert lease.holder == server.app[OWNERSHIP].holder
    await asyncio.sleep(4)  # renewed every ttl/3 = 3 s while open: never near lapsing
    assert (await lease_of(store)).token == lease.token
    assert await store.redis.pttl(keys.media_lease(ROOM)) > 6500
    deleted = await send("DELETE", server.url + whip.location, headers=whip.headers())
    assert deleted.status == 200
    # given up at the next renewal (<= 3 s), long before it would lapse (9 s)
    assert await until(lambda: ROOM not in server.app[OWNERSHIP].held, limit_s=5)
    assert await media_lease.current(store, ROOM) is None
    await alice.close()


async def test_whip_for_a_room_held_by_another_node_is_redirected_never_to_itself(
    server: Harness, store: RoomStore
) -> None:
    await server.create_room(id=ROOM, title="owned")
    whip = Whip(f"{server.url}/whip/{ROOM}?x=1", "alice")
    elsewhere = {"node": "far:8080", "worker": "w1", "url": "http://far.example:8080"}
    assert (await media_lease.hold(store, ROOM, "far-holder", elsewhere, ttl_s=60)).held
    sent = await send("POST", whip.url, body="v=0\r\n", headers=whip.headers())
    assert sent.status == 307
    assert sent.headers["Location"] == f"http://far.example:8080/whip/{ROOM}?x=1"
    # another node that announces this node's own URL (one URL shared by all
    # nodes): a 307 would come back here, so 503 until the lease moves
    await store.redis.delete(keys.media_lease(ROOM))
    mine = {**elsewhere, "url": server.app[SETTINGS].node_url}
    assert (await media_lease.hold(store, ROOM, "far-holder", mine, ttl_s=60)).held
    refused = await send("POST", whip.url, body="v=0\r\n", headers=whip.headers())
    assert refused.status == 503 and refused.headers["Retry-After"] == "9"
    assert json.loads(refused.text)["error"]["code"] == "unavailable"
    assert server.app[MEDIA].sessions == {}


# --- one node, two workers ----------------------------------------------------
async def test_publishers_on_either_worker_feed_one_mixer_and_sessions_route_to_their_worker(
    tmp_path: Path, env: dict[str, str], store: RoomStore
) -> None:
    async with started(tmp_path / "data", 2, env) as node:
        await create_room(node)
        first = Whip(f"http://w1/whip/{ROOM}", "alice", via=node.socket("w1"))
        second = Whip(f"http://w2/whip/{ROOM}", "bob", via=node.socket("w2"))
        alice = await TonePublisher.start(440, first)
        bob = await TonePublisher.start(660, second)
        await wait_connected(alice.pc)
        await wait_connected(bob.pc)
        lease = await lease_of(store)
        owner = lease.endpoint["worker"]
        other = "w2" if owner == "w1" else "w1"
        # both sessions live in the owner, whichever worker each POST reached
        assert session_worker(first.location) == session_worker(second.location) == owner
        assert lease.endpoint["node"] and lease.endpoint["url"] == node.url
        # one mixer: a listener on the owner hears both voices
        whep = Whip(f"http://{owner}/whep/{ROOM}", "carol", via=node.socket(owner), kind="whep")
        listener = await AudioListener.start(whep)
        await wait_connected(listener.pc)
        assert await hears(listener, 440, 660)
        # a request already handed once is never handed on: served or refused
        handed = await send(
            "POST",
            f"http://{other}/whip/{ROOM}",
            via=node.socket(other),
            body=alice.pc.localDescription.sdp,
            headers={**second.headers(), HANDED: owner},
        )
        assert handed.status == 503, handed.text
        assert json.loads(handed.text)["error"]["code"] == "unavailable"
        assert handed.headers["Retry-After"] == "2"  # the ttl (1.5 s), rounded up
        # PATCH (trickle ICE) and DELETE reaching the other worker reach the session
        sdp = alice.pc.localDescription.sdp
        _, fragment = split_candidates(sdp)
        path = first.location.removeprefix(node.url)
        patched = await send(
            "PATCH",
            f"http://{other}{path}",
            via=node.socket(other),
            body=fragment,
            headers=first.headers(TRICKLE),
        )
        assert patched.status == 204, patched.text
        deleted = await send(
            "DELETE", f"http://{other}{path}", via=node.socket(other), headers=first.headers()
        )
        assert deleted.status == 200, deleted.text
        again = await send(
            "DELETE", f"http://{owner}{path}", via=node.socket(owner), headers=first.headers()
        )
        assert again.status == 404
        # counted node-wide: one WHIP, one PATCH and one DELETE handed at least
        scrape = await send("GET", f"{node.url}/metrics")
        handed_total = [
            float(line.split()[-1])
            for line in scrape.text.splitlines()
            if line.startswith('droproom_media_routed_total{outcome="handed"}')
        ]
        assert handed_total and handed_total[0] >= 3, scrape.text[-2000:]
        # and a WHEP session the same way
        wpath = whep.location.removeprefix(node.url)
        gone = await send(
            "DELETE", f"http://{other}{wpath}", via=node.socket(other), headers=whep.headers()
        )
        assert gone.status == 200, gone.text
        for peer in (alice, bob, listener):
            await peer.close()


async def test_a_killed_owner_worker_hands_the_lease_on_with_a_higher_token(
    tmp_path: Path, env: dict[str, str], store: RoomStore
) -> None:
    async with started(tmp_path / "data", 2, env) as node:
        await create_room(node)
        first = Whip(f"{node.url}/whip/{ROOM}", "alice")
        alice = await TonePublisher.start(440, first)
        await wait_connected(alice.pc)
        before = await lease_of(store)
        os.kill(node.worker_pid(before.endpoint["worker"]), signal.SIGKILL)
        await alice.close()
        # the publisher comes back (wherever its connection lands): 503 with
        # Retry-After while the dead holder's lease lapses, then served
        refusals: list[Answer] = []
        again = Whip(f"{node.url}/whip/{ROOM}", "alice")
        deadline = time.monotonic() + 30
        republished = None
        while republished is None and time.monotonic() < deadline:
            try:
                republished = await TonePublisher.start(440, again)
            except AssertionError:
                last = again.answers[-1]
                assert last.status in (503, 502), (last.status, last.text)
                if last.status == 503:
                    assert json.loads(last.text)["error"]["code"] == "unavailable"
                    assert int(last.headers["Retry-After"]) >= 1
                refusals.append(last)
                await asyncio.sleep(0.3)
            except aiohttp.ClientError:
                await asyncio.sleep(0.3)  # the kernel still routed to the dead listener
        assert republished is not None, [a.status for a in again.answers]
        await wait_connected(republished.pc)
        after = await lease_of(store)
        assert after.token > before.token and after.holder != before.holder
        assert session_worker(again.location) == after.endpoint["worker"]
        await republished.close()


# --- two nodes, one Redis -------------------------------------------------------
async def test_whip_on_a_node_that_does_not_own_the_room_is_redirected_to_the_owner(
    tmp_path: Path, env: dict[str, str], store: RoomStore
) -> None:
    async with (
        started(tmp_path / "a", 1, env) as a,
        started(tmp_path / "b", 1, env) as b,
    ):
        await create_room(a)
        alice = await TonePublisher.start(440, Whip(f"{a.url}/whip/{ROOM}", "alice"))
        await wait_connected(alice.pc)
        assert (await lease_of(store)).endpoint["url"] == a.url
        bob_whip = Whip(f"{b.url}/whip/{ROOM}?via=b", "bob")
        redirect = await send("POST", bob_whip.url, body="v=0\r\n", headers=bob_whip.headers())
        assert redirect.status == 307, redirect.text
        assert redirect.headers["Location"] == f"{a.url}/whip/{ROOM}?via=b"
        bob_whip.url = redirect.headers["Location"]
        bob = await TonePublisher.start(660, bob_whip)
        await wait_connected(bob.pc)
        # the session's URL is absolute: the owner node's
        assert bob_whip.location.startswith(f"{a.url}/whip/{ROOM}/")
        listener = await AudioListener.start(Whip(f"{a.url}/whep/{ROOM}", "carol", kind="whep"))
        await wait_connected(listener.pc)
        assert await hears(listener, 440, 660)
        for peer in (alice, bob, listener):
            await peer.close()


def recording(data: Path) -> tuple[Path, dict[str, Any]]:
    found = sorted((data / "recordings" / ROOM).glob("*.ogg"))
    assert len(found) == 1, found
    sidecar = found[0].with_suffix(".json")
    return found[0], json.loads(sidecar.read_text()) if sidecar.exists() else {}


async def test_a_paused_owner_that_lost_the_lease_stops_recording(
    tmp_path: Path, env: dict[str, str], store: RoomStore
) -> None:
    async with (
        started(tmp_path / "a", 1, env) as a,
        started(tmp_path / "b", 1, env) as b,
    ):
        await create_room(a)
        published = time.monotonic()
        alice = await TonePublisher.start(440, Whip(f"{a.url}/whip/{ROOM}", "alice"))
        await wait_connected(alice.pc)
        before = await lease_of(store)
        ogg, _ = recording(a.data)
        assert await until(lambda: recording(a.data)[1].get("audio_at") is not None)
        await asyncio.sleep(2.0)
        pid = a.proc.pid  # `--workers 1`: the node is one process
        os.kill(pid, signal.SIGSTOP)  # paused past its lease: node b takes the room
        paused = time.monotonic()
        try:
            bob_whip = Whip(f"{b.url}/whip/{ROOM}", "bob")
            deadline = time.monotonic() + TTL_S * 6
            bob = None
            while bob is None and time.monotonic() < deadline:
                try:
                    bob = await TonePublisher.start(660, bob_whip)
                except AssertionError:
                    await asyncio.sleep(0.2)  # 307 to the paused owner until its lease lapses
            assert bob is not None, [x.status for x in bob_whip.answers]
            after = await lease_of(store)
            assert after.endpoint["url"] == b.url and after.token > before.token
        finally:
            os.kill(pid, signal.SIGCONT)
        # awake again, a finds the lease gone: its recording ends, its publisher is closed
        assert await until(lambda: recording(a.data)[1].get("ended_at") is not None)
        settled = ogg.stat().st_size
        await asyncio.sleep(1.0)
        assert ogg.stat().st_size == settled
        # nothing recorded for the lost term: not a frame after the pause
        recorded = recording(a.data)[1]["duration_s"]
        assert 1.5 < recorded < paused - published + 0.1
        assert await until(lambda: alice.pc.connectionState in ("failed", "closed"), 30)
        await wait_connected(bob.pc)
        await bob.close()
        await alice.close()
