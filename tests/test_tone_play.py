"""`tone:play`: a product's preview played into a room's live mix, heard by
real aiortc WHEP listeners with and without a voice on stage, announced with
`tone:playing` / `tone:stopped`, refused to listeners and for products with
no ready preview."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from commerce.storage import S3Storage, preview_key
from media.config import MediaConfig
from media.engine import MediaEngine
from server.appkeys import STORAGE
from server.audio.routes import MEDIA
from server.shop.resources import SHOP
from tests.harness import Client, Harness, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.media_helpers import AudioListener, TonePublisher, band_energy, wait_connected
from tests.sound_helpers import make_sound
from tests.test_delivery_s3 import ACCESS_KEY, BUCKET, SECRET_KEY, Moto

ROOM = "r1"
PLAY_ROOM = "tonal"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[MediaEngine]:
    config = MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), inactivity_timeout_s=2.0)
    ended: list[tuple[str, str]] = []

    async def on_tone_end(room: str, product_id: str) -> None:
        ended.append((room, product_id))

    eng = MediaEngine(config, on_tone_end=on_tone_end)
    eng.ended = ended  # type: ignore[attr-defined]
    yield eng
    await eng.aclose()


async def _listener(engine: MediaEngine, identity: str) -> AudioListener:
    async def exchange(sdp: str) -> str:
        return (await engine.listen(ROOM, identity, sdp))[1]

    lis = await AudioListener.start(exchange)
    await wait_connected(lis.pc)
    return lis


async def _publisher(engine: MediaEngine, identity: str, freq: float) -> TonePublisher:
    async def exchange(sdp: str) -> str:
        return (await engine.publish(ROOM, identity, sdp))[1]

    pub = await TonePublisher.start(freq, exchange)
    await wait_connected(pub.pc)
    return pub


async def _span(lis: AudioListener, seconds: float) -> np.ndarray:
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(seconds)
    return lis.audio_since(t0)


async def test_a_tone_is_heard_by_a_listener_with_nobody_on_stage(
    engine: MediaEngine, tmp_path: Path
) -> None:
    sound = make_sound(tmp_path / "chime.mp3", freq=660, seconds=2.0)
    lis = await _listener(engine, "bob")
    silent = await _span(lis, 0.6)
    assert float(np.sqrt(np.mean(silent**2))) < 0.01  # nobody speaks: silence
    ends_at = await engine.play_tone(ROOM, "chime", sound, now=1000.0)
    assert ends_at == pytest.approx(1002.0, abs=0.05)
    assert engine.tone_playing(ROOM) == "chime"
    await asyncio.sleep(0.4)
    heard = await _span(lis, 1.0)
    assert band_energy(heard, 660) > 0.8
    assert float(np.sqrt(np.mean(heard**2))) > 0.1
    async with asyncio.timeout(3):
        while not engine.ended:  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
    assert engine.ended == [(ROOM, "chime")]  # type: ignore[attr-defined]
    assert engine.tone_playing(ROOM) is None
    await asyncio.sleep(0.3)
    after = await _span(lis, 0.5)
    assert float(np.sqrt(np.mean(after**2))) < 0.01
    await lis.close()


async def test_a_tone_over_one_voice_switches_the_room_to_mixing(
    engine: MediaEngine, tmp_path: Path
) -> None:
    sound = make_sound(tmp_path / "chime.wav", freq=660, seconds=3.0)
    alice = await _publisher(engine, "alice", 440)
    bob = await _listener(engine, "bob")
    alice_ear = await _listener(engine, "alice")
    await asyncio.sleep(0.8)
    assert engine.rooms[ROOM].mixer.encoded == 0  # one voice: forwarded
    await engine.play_tone(ROOM, "chime", sound, now=0.0)
    await asyncio.sleep(0.4)
    heard_bob, heard_alice = await asyncio.gather(_span(bob, 1.2), _span(alice_ear, 1.2))
    assert band_energy(heard_bob, 440) > 0.15 and band_energy(heard_bob, 660) > 0.15
    assert band_energy(heard_alice, 660) > 0.8  # the speaker hears the tone, not herself
    assert engine.rooms[ROOM].mixer.encoded > 0
    assert engine.stop_tone(ROOM)
    await asyncio.sleep(0.4)
    after = await _span(bob, 0.8)
    assert band_energy(after, 660) < 0.05 and band_energy(after, 440) > 0.8
    assert engine.ended == []  # type: ignore[attr-defined]  # stopped, not ended by itself
    for peer in (alice, bob, alice_ear):
        await peer.close()


async def test_an_unreadable_preview_is_a_conflict(engine: MediaEngine, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not a sound at all" * 100)
    from kernel.errors import Conflict

    with pytest.raises(Conflict):
        await engine.play_tone(ROOM, "junk", junk, now=0.0)
    assert ROOM not in engine.rooms


# --- over Socket.IO and WHEP, against a real server ---------------------------
async def _whep(server: Harness, identity: str) -> AudioListener:
    token = server.token(PLAY_ROOM, identity, "listener")

    async def exchange(offer: str) -> str:
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{server.url}/whep/{PLAY_ROOM}", data=offer, headers=headers) as r,
        ):
            assert r.status == 201, await r.text()
            return await r.text()

    lis = await AudioListener.start(exchange)
    await wait_connected(lis.pc)
    return lis


async def _ready_tone(server: Harness, tmp_path: Path, pid: str = "chime") -> str:
    """A digital product whose ready audio has a 660 Hz preview in the store."""
    await server.admin_post(
        "/api/v1/products",
        {"id": pid, "title": "Chime", "price": 99, "currency": "eur", "kind": "digital"},
    )
    preview = make_sound(tmp_path / f"{pid}.mp3", freq=660, seconds=2.0)
    sha = hashlib.sha256(await asyncio.to_thread(preview.read_bytes)).hexdigest()
    await server.app[STORAGE].put_file(preview, preview_key(sha), "audio/mpeg")
    audio = {
        "state": "ready",
        "progress": 1.0,
        "duration_s": 2.0,
        "loudness_lufs": -16.0,
        "true_peak_dbtp": -1.5,
        "preview_url": f"/files/previews/{sha}.mp3",
        "variants": [],
        "bundle": {"bytes": 1, "sha256": "0" * 64},
    }
    await server.app[SHOP].catalog.set_audio(pid, audio)
    return pid


async def test_tone_play_is_heard_over_whep_and_announced(server: Harness, tmp_path: Path) -> None:
    await server.create_room(id=PLAY_ROOM)
    pid = await _ready_tone(server, tmp_path)
    mod = await server.connect(PLAY_ROOM, "mod", "moderator")
    fan = await server.connect(PLAY_ROOM, "fan")
    lis = await _whep(server, "fan")
    await asyncio.sleep(0.5)
    before = await _span(lis, 0.5)
    assert float(np.sqrt(np.mean(before**2))) < 0.01
    answer = await mod.call("tone:play", {"product_id": pid})
    assert answer["ok"], answer
    playing = await fan.wait_for("tone:playing")
    assert playing == {"product_id": pid, "ends_at": answer["ends_at"]}
    assert answer["ends_at"] == pytest.approx(time.time() + 2.0, abs=1.0)
    late = await server.connect(PLAY_ROOM, "late")
    assert late.received("room:state")[0]["tone"]["product_id"] == pid
    await asyncio.sleep(0.3)
    heard = await _span(lis, 1.0)
    assert band_energy(heard, 660) > 0.8
    stopped = await fan.wait_for("tone:stopped", timeout=5)  # played to its end
    assert stopped == {"product_id": pid}
    await asyncio.sleep(0.3)
    after = await _span(lis, 0.5)
    assert float(np.sqrt(np.mean(after**2))) < 0.01
    await lis.close()


async def test_tone_stop_ends_it_for_everyone(server: Harness, tmp_path: Path) -> None:
    await server.create_room(id=PLAY_ROOM)
    pid = await _ready_tone(server, tmp_path)
    mod = await server.connect(PLAY_ROOM, "mod", "moderator")
    fan = await server.connect(PLAY_ROOM, "fan")
    assert (await mod.call("tone:play", {"product_id": pid}))["ok"]
    await fan.wait_for("tone:playing")
    answer = await mod.call("tone:stop", {})
    assert answer == {"ok": True, "stopped": True}
    assert await fan.wait_for("tone:stopped") == {"product_id": pid}
    assert server.app[MEDIA].tone_playing(PLAY_ROOM) is None
    await asyncio.sleep(2.5)  # past where it would have ended: told once only
    assert len(fan.received("tone:stopped")) == 1


async def test_tone_play_refusals(server: Harness, tmp_path: Path) -> None:
    await server.create_room(id=PLAY_ROOM)
    pid = await _ready_tone(server, tmp_path)
    await server.admin_post(
        "/api/v1/products",
        {"id": "bare", "title": "No sound yet", "price": 99, "currency": "eur", "kind": "digital"},
    )
    mod = await server.connect(PLAY_ROOM, "mod", "moderator")
    fan = await server.connect(PLAY_ROOM, "fan")
    refused = await fan.call("tone:play", {"product_id": pid})
    assert refused["error"]["code"] == "forbidden"
    assert (await fan.call("tone:stop", {}))["error"]["code"] == "forbidden"
    missing = await mod.call("tone:play", {"product_id": "nope"})
    assert missing["error"]["code"] == "not_found"
    bare = await mod.call("tone:play", {"product_id": "bare"})
    assert bare["error"]["code"] == "conflict" and "preview" in bare["error"]["message"]
    bad = await mod.call("tone:play", {"product_id": 5})
    assert bad["error"]["code"] == "invalid"
    await asyncio.sleep(0.2)
    assert fan.received("tone:playing") == []
    assert server.app[MEDIA].tone_playing(PLAY_ROOM) is None


@pytest.mark.parametrize("s3_down", [False, True], ids=["s3", "s3_down"])
async def test_an_uploaded_tone_in_s3_plays_into_the_room(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, s3_down: bool
) -> None:
    """The creator's whole path with the store in S3 (moto on loopback):
    upload, processed, files in the bucket, played into the room; with S3
    down, the job retries its copies, then fails with a reason."""
    moto = Moto()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        settings = make_settings(tmp_path / "data", redis_url, storage_url=f"s3://{BUCKET}/t")
        await moto.ready()
        server = await start_server(settings)
        try:
            storage = server.app[STORAGE]
            assert isinstance(storage, S3Storage)
            await storage.client.create_bucket(Bucket=BUCKET)
            if s3_down:
                moto.stop()
                await _upload_while_s3_is_down(server, tmp_path)
            else:
                await _upload_and_play(server, tmp_path)
        finally:
            await stop_server(server)
    finally:
        moto.stop()


async def _upload_bell(server: Harness, tmp_path: Path) -> Client:
    await server.create_room(id=PLAY_ROOM)
    await server.admin_post(
        "/api/v1/products",
        {"id": "bell", "title": "Bell", "price": 99, "currency": "eur", "kind": "digital"},
    )
    mod = await server.connect(PLAY_ROOM, "mod", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "bell"}))["ok"]
    sound = await asyncio.to_thread(make_sound(tmp_path / "bell.flac", seconds=4.0).read_bytes)
    status, _ = await server.request(
        "POST",
        "/api/v1/products/bell/audio",
        admin=True,
        data=sound,
        headers={"Content-Type": "audio/flac"},
    )
    assert status == 202
    return mod


async def _upload_while_s3_is_down(server: Harness, tmp_path: Path) -> None:
    mod = await _upload_bell(server, tmp_path)
    failed = await mod.wait_for(
        "product:updated", lambda d: d["product"]["audio"]["state"] == "failed", timeout=120
    )
    assert "could not be stored" in failed["product"]["audio"]["error"]


async def _upload_and_play(server: Harness, tmp_path: Path) -> None:
    storage = server.app[STORAGE]
    mod = await _upload_bell(server, tmp_path)
    ready = await mod.wait_for(
        "product:updated", lambda d: d["product"]["audio"]["state"] == "ready", timeout=120
    )
    sha = ready["product"]["audio"]["preview"]["sha256"]
    assert await storage.exists(preview_key(sha))
    answer = await mod.call("tone:play", {"product_id": "bell"})
    assert answer["ok"], answer
    assert await mod.wait_for("tone:playing") == {
        "product_id": "bell",
        "ends_at": answer["ends_at"],
    }
    assert server.app[MEDIA].tone_playing(PLAY_ROOM) == "bell"
    assert (await mod.call("tone:stop", {}))["stopped"] is True
