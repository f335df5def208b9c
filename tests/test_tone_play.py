"""`tone:play`: a product's preview played into a room's live mix, heard by
real aiortc WHEP listeners with and without a voice on stage, announced with
`tone:playing` / `tone:stopped`, refused to listeners and for products with
no ready preview."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from media.config import MediaConfig
from media.engine import MediaEngine
from tests.media_helpers import AudioListener, TonePublisher, band_energy, wait_connected
from tests.sound_helpers import make_sound

ROOM = "r1"


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
