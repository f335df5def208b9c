"""`tone:play` / `tone:stop` from any process (`serve --workers 2`): a
moderator connected to the worker that does not mix the room has the command
handed to the worker that does (the holder of the room's media lease); the
room's listeners hear it; `room:state.tone` is right for a late joiner on
either worker; the internal route refuses a request without its proof."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from commerce.catalog import Catalog
from commerce.storage import LocalStorage, preview_key
from rooms import keys as room_keys
from rooms import media_lease
from rooms.store import RoomStore
from server import tokens
from server.appkeys import ROOMS, SETTINGS
from server.audio.routes import MEDIA
from server.audio.tones import HANDED, PROOF, TONE_ROUTE, proof
from server.redis_client import connect
from server.roles import Role
from tests.harness import ADMIN_KEY, SECRET, Client, Harness, free_port
from tests.media_helpers import AudioListener, TonePublisher, band_energy, wait_connected
from tests.sound_helpers import make_sound
from tests.test_media_owner import (
    ROOM,
    Node,
    Whip,
    _env,
    create_room,
    lease_of,
    send,
    started,
)
from tests.test_tone_play import PLAY_ROOM
from tests.test_tone_play import _ready_tone as ready_preview

pytestmark = [pytest.mark.slow, pytest.mark.allow_blocking]
PRODUCT = "chime"
TONE_HZ = 660
VOICE_HZ = 440


def token(identity: str, role: Role) -> str:
    return tokens.mint(
        SECRET, room=ROOM, identity=identity, role=role, name=identity, ttl_s=600, now=time.time()
    )


async def sio_client(node: Node, identity: str, role: Role) -> Client:
    sio = socketio.AsyncClient(reconnection=False)
    client = Client(sio)

    async def catch_all(event: str, data: Any = None) -> None:
        client.record(event, data)

    sio.on("*", catch_all)
    await sio.connect(
        node.url, auth={"token": token(identity, role)}, transports=["websocket"], wait_timeout=10
    )
    await client.wait_for("room:state", timeout=10)
    return client


def worker_of(client: Client) -> str:
    return (client.sio.eio.sid or "").partition(".")[0]


async def one_on(node: Node, worker: str, identity: str, role: Role) -> Client:
    """A websocket client that landed on `worker` (the kernel picks; we retry)."""
    for _ in range(40):
        client = await sio_client(node, identity, role)
        if worker_of(client) == worker:
            return client
        await client.sio.disconnect()
    raise AssertionError(f"no connection landed on {worker}")


@pytest.fixture
def env(redis_url: str, request: pytest.FixtureRequest) -> dict[str, str]:
    return _env(redis_url, bool(request.config.getoption("--redis-cluster")))


@pytest.fixture
async def store(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[RoomStore]:
    client = connect(
        redis_url, cluster=bool(request.config.getoption("--redis-cluster")), decode_responses=True
    )
    yield RoomStore(client)
    await client.aclose()


@pytest.fixture
async def catalog(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Catalog]:
    client = connect(redis_url, cluster=bool(request.config.getoption("--redis-cluster")))
    yield Catalog(client)
    await client.aclose()


async def ready_tone(node: Node, catalog: Catalog, tmp_path: Path, seconds: float) -> None:
    """A digital product whose ready audio has a 660 Hz preview in the node's
    store (its own data dir: only that node can play it)."""
    status, _ = await admin(
        node,
        "/api/v1/products",
        {"id": PRODUCT, "title": "Chime", "price": 99, "currency": "eur", "kind": "digital"},
    )
    assert status in (200, 201)
    preview = make_sound(tmp_path / f"{PRODUCT}.mp3", freq=TONE_HZ, seconds=seconds)
    sha = hashlib.sha256(preview.read_bytes()).hexdigest()
    await LocalStorage(node.data / "files").put_file(preview, preview_key(sha), "audio/mpeg")
    audio = {
        "state": "ready",
        "progress": 1.0,
        "duration_s": seconds,
        "loudness_lufs": -16.0,
        "true_peak_dbtp": -1.5,
        "preview_url": f"/files/previews/{sha}.mp3",
        "variants": [],
        "bundle": {"bytes": 1, "sha256": "0" * 64},
    }
    await catalog.set_audio(PRODUCT, audio)


async def admin(node: Node, path: str, body: dict[str, Any]) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    answer = await send("POST", node.url + path, body=json.dumps(body), headers=headers)
    return answer.status, answer.text


async def share(listener: AudioListener, freq: float, seconds: float = 1.0) -> float:
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(seconds)
    return band_energy(listener.audio_since(t0), freq)


async def test_a_tone_played_from_the_worker_that_does_not_mix_the_room_is_heard(
    tmp_path: Path, env: dict[str, str], catalog: Catalog
) -> None:
    async with started(tmp_path / "data", 2, env) as node:
        await create_room(node)
        await ready_tone(node, catalog, tmp_path, seconds=10.0)
        mod = await sio_client(node, "mod", Role.MODERATOR)
        here = worker_of(mod)
        holder = "w2" if here == "w1" else "w1"
        # a voice published on the other worker: that worker mixes the room
        whip = Whip(f"http://{holder}/whip/{ROOM}", "alice", via=node.socket(holder))
        voice = await TonePublisher.start(VOICE_HZ, whip)
        await wait_connected(voice.pc)
        whep = Whip(f"http://{holder}/whep/{ROOM}", "carol", via=node.socket(holder), kind="whep")
        listener = await AudioListener.start(whep)
        await wait_connected(listener.pc)
        fan = await one_on(node, here, "fan", Role.LISTENER)
        clients = [mod, fan]
        try:
            assert await share(listener, TONE_HZ) < 0.05
            answer = await mod.call("tone:play", {"product_id": PRODUCT})
            assert answer["ok"], answer
            assert answer["ends_at"] == pytest.approx(time.time() + 10.0, abs=2.0)
            playing = {"product_id": PRODUCT, "ends_at": answer["ends_at"]}
            assert await fan.wait_for("tone:playing") == playing
            # the listener of the room hears the tone over the voice
            await asyncio.sleep(0.3)
            assert await share(listener, TONE_HZ, 1.2) > 0.15
            # a late joiner on either worker is told what plays
            for worker in (here, holder):
                late = await one_on(node, worker, f"late-{worker}", Role.LISTENER)
                clients.append(late)
                assert late.received("room:state")[-1]["tone"] == playing, worker
            # stopped from the worker that does not mix the room
            assert await mod.call("tone:stop", {}) == {"ok": True, "stopped": True}
            assert await fan.wait_for("tone:stopped") == {"product_id": PRODUCT}
            await asyncio.sleep(0.3)
            assert await share(listener, TONE_HZ) < 0.05
            assert await share(listener, VOICE_HZ) > 0.5
            after = await one_on(node, here, "after", Role.LISTENER)
            clients.append(after)
            assert after.received("room:state")[-1]["tone"] is None
        finally:
            for client in clients:
                await client.sio.disconnect()
            await voice.close()
            await listener.close()


async def test_the_internal_route_refuses_a_request_without_its_proof(
    tmp_path: Path, env: dict[str, str], catalog: Catalog, store: RoomStore
) -> None:
    async with started(tmp_path / "data", 2, env) as node:
        await create_room(node)
        await ready_tone(node, catalog, tmp_path, seconds=4.0)
        fan = await sio_client(node, "fan", Role.LISTENER)
        path = TONE_ROUTE.format(room=ROOM)
        body = json.dumps({"action": "play", "product_id": PRODUCT})
        json_type = {"Content-Type": "application/json"}
        now = time.time()
        refused = {
            "no proof": {},
            "the admin key alone": {"Authorization": f"Bearer {ADMIN_KEY}"},
            "another secret": {PROOF: proof("not-the-secret", now, path, body.encode())},
            "another body": {PROOF: proof(SECRET, now, path, b'{"action": "stop"}')},
            "too old": {PROOF: proof(SECRET, now - 600, path, body.encode())},
        }
        try:
            for why, headers in refused.items():
                answer = await send("POST", node.url + path, body=body, headers=json_type | headers)
                assert answer.status == 401, (why, answer.status, answer.text)
                assert json.loads(answer.text)["error"]["code"] == "unauthorized"
            await asyncio.sleep(0.5)
            assert fan.received("tone:playing") == []
            # with its proof it plays (nobody held the room: that worker takes it)
            good = {PROOF: proof(SECRET, time.time(), path, body.encode())}
            answer = await send("POST", node.url + path, body=body, headers=json_type | good)
            assert answer.status == 200, answer.text
            assert json.loads(answer.text)["product_id"] == PRODUCT
            assert (await fan.wait_for("tone:playing"))["product_id"] == PRODUCT
            # the same request again (replayed by someone who saw it): refused
            again = await send("POST", node.url + path, body=body, headers=json_type | good)
            assert again.status == 401, again.text
            assert "used already" in json.loads(again.text)["error"]["message"]
            # a stamp too long to be a time is refused, not a crash
            long_stamp = {PROOF: "9" * 5000 + "." + "0" * 16 + "." + "0" * 64}
            answer = await send("POST", node.url + path, body=body, headers=json_type | long_stamp)
            assert answer.status == 401, answer.text
            # a handed request reaching a worker that does not mix the room is
            # refused, never handed on
            holder = (await lease_of(store)).endpoint["worker"]
            other = "w2" if holder == "w1" else "w1"
            handed = {PROOF: proof(SECRET, time.time(), path, body.encode()), HANDED: holder}
            answer = await send(
                "POST",
                f"http://{other}{path}",
                via=node.socket(other),
                body=body,
                headers=json_type | handed,
            )
            assert answer.status == 503, answer.text
            assert json.loads(answer.text)["error"]["code"] == "unavailable"
        finally:
            await fan.sio.disconnect()


async def test_a_tone_played_on_another_node_plays_at_the_owner_and_ends_for_everyone(
    tmp_path: Path, env: dict[str, str], catalog: Catalog, store: RoomStore
) -> None:
    async with (
        started(tmp_path / "a", 1, env) as a,
        started(tmp_path / "b", 1, env) as b,
    ):
        await create_room(a)
        await ready_tone(a, catalog, tmp_path, seconds=3.0)  # the preview is in a's store only
        voice = await TonePublisher.start(VOICE_HZ, Whip(f"{a.url}/whip/{ROOM}", "alice"))
        await wait_connected(voice.pc)
        assert (await lease_of(store)).endpoint["url"] == a.url
        listener = await AudioListener.start(Whip(f"{a.url}/whep/{ROOM}", "carol", kind="whep"))
        await wait_connected(listener.pc)
        mod = await sio_client(b, "mod", Role.MODERATOR)
        fan = await sio_client(b, "fan", Role.LISTENER)
        clients = [mod, fan]
        try:
            answer = await mod.call("tone:play", {"product_id": PRODUCT})
            assert answer["ok"], answer
            playing = {"product_id": PRODUCT, "ends_at": answer["ends_at"]}
            assert await fan.wait_for("tone:playing") == playing
            late = await sio_client(b, "late", Role.LISTENER)
            clients.append(late)
            assert late.received("room:state")[-1]["tone"] == playing
            await asyncio.sleep(0.3)
            assert await share(listener, TONE_HZ, 1.0) > 0.15
            # played to its end at the owner: node b's listeners are told
            assert await fan.wait_for("tone:stopped", timeout=10) == {"product_id": PRODUCT}
            after = await sio_client(b, "after", Role.LISTENER)
            clients.append(after)
            assert after.received("room:state")[-1]["tone"] is None
            await asyncio.sleep(0.3)
            assert await share(listener, TONE_HZ) < 0.05
            # nothing plays now: the owner says so
            assert await mod.call("tone:stop", {}) == {"ok": True, "stopped": False}
        finally:
            for client in clients:
                await client.sio.disconnect()
            await voice.close()
            await listener.close()


# --- one process, the holder out of reach ------------------------------------------
async def test_a_tone_for_a_room_mixed_by_a_process_out_of_reach_is_unavailable(
    server: Harness, tmp_path: Path
) -> None:
    await server.create_room(id=PLAY_ROOM)
    pid = await ready_preview(server, tmp_path)
    mod = await server.connect(PLAY_ROOM, "mod", "moderator")
    fan = await server.connect(PLAY_ROOM, "fan")
    settings = server.app[SETTINGS]
    holders = {
        "an earlier run of a worker of this node": {"node": settings.node, "worker": "w7"},
        "a node that is gone": {"node": "far:1", "url": f"http://127.0.0.1:{free_port()}"},
        "a node announcing this node's URL": {"node": "far:2", "url": settings.node_url},
    }
    rooms = server.app[ROOMS]
    for why, endpoint in holders.items():
        await rooms.redis.delete(room_keys.media_lease(PLAY_ROOM))
        assert (await media_lease.hold(rooms, PLAY_ROOM, "elsewhere", endpoint, ttl_s=60)).held
        played = await mod.call("tone:play", {"product_id": pid})
        assert played["error"]["code"] == "unavailable", (why, played)
        stopped = await mod.call("tone:stop", {})
        assert stopped["error"]["code"] == "unavailable", (why, stopped)
    await asyncio.sleep(0.3)
    assert fan.received("tone:playing") == [] and fan.received("tone:stopped") == []
    assert server.app[MEDIA].tone_playing(PLAY_ROOM) is None
    # once nobody holds the room, the moderator's process takes it and plays
    await rooms.redis.delete(room_keys.media_lease(PLAY_ROOM))
    assert (await mod.call("tone:play", {"product_id": pid}))["ok"]
    assert server.app[MEDIA].tone_playing(PLAY_ROOM) == pid
