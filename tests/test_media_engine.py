"""The media engine with real aiortc peers on loopback: forwarding, mixing,
mix-minus, mute, slow listeners, stalled publishers, silence, levels,
recording, watchdogs and clean shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest

from media.config import MediaConfig
from media.engine import MediaEngine
from media.fanout import Outlet
from media.ingest import new_decoder
from media.packets import SharedPacket
from media.session import Kind
from tests.media_helpers import (
    AudioListener,
    TonePublisher,
    band_energy,
    peak_hz,
    wait_connected,
)

ROOM = "r1"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[MediaEngine]:
    config = MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), inactivity_timeout_s=2.0)
    eng = MediaEngine(config)
    yield eng
    await eng.aclose()


async def publisher(engine: MediaEngine, identity: str, freq: float) -> TonePublisher:
    async def exchange(sdp: str) -> str:
        return (await engine.publish(ROOM, identity, sdp))[1]

    pub = await TonePublisher.start(freq, exchange)
    await wait_connected(pub.pc)
    return pub


async def listener(engine: MediaEngine, identity: str, decode: bool = True) -> AudioListener:
    async def exchange(sdp: str) -> str:
        return (await engine.listen(ROOM, identity, sdp))[1]

    lis = await AudioListener.start(exchange, decode=decode)
    await wait_connected(lis.pc)
    return lis


async def hear(lis: AudioListener, settle: float = 1.0, span: float = 1.2) -> np.ndarray:
    await asyncio.sleep(settle)
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(span)
    return lis.audio_since(t0)


class ProbeWire:
    """A listener without a network: records (time, payload)."""

    def __init__(self, writable: bool = True) -> None:
        self.ok = writable
        self.got: list[tuple[float, bytes]] = []

    def writable(self) -> bool:
        return self.ok

    def write(self, packet: SharedPacket) -> None:
        self.got.append((asyncio.get_running_loop().time(), packet.payload))


def decode(payloads: list[bytes]) -> np.ndarray:
    ctx = new_decoder()
    out = [f.to_ndarray().reshape(-1) for p in payloads for f in ctx.decode(av.Packet(p))]
    return np.concatenate(out).astype(np.float32) / 32768.0


async def test_one_speaker_is_forwarded_unchanged(engine: MediaEngine) -> None:
    pub = await publisher(engine, "alice", 440)
    lis = await listener(engine, "bob")
    audio = await hear(lis)
    assert abs(peak_hz(audio) - 440) < 5
    assert band_energy(audio, 440) > 0.9
    assert engine.rooms[ROOM].mixer.encoded == 0  # forwarded, never re-encoded
    await pub.close()
    await lis.close()


async def test_two_speakers_mix_and_mix_minus(engine: MediaEngine) -> None:
    alice = await publisher(engine, "alice", 440)
    carol = await publisher(engine, "carol", 660)
    bob = await listener(engine, "bob")
    alice_ear = await listener(engine, "alice")  # a speaker listening to the room
    heard_bob, heard_alice = await asyncio.gather(hear(bob), hear(alice_ear))
    assert band_energy(heard_bob, 440) > 0.2 and band_energy(heard_bob, 660) > 0.2
    assert band_energy(heard_alice, 660) > 0.8
    assert band_energy(heard_alice, 440) < 0.02
    for peer in (alice, carol, bob, alice_ear):
        await peer.close()


async def test_mute_takes_voice_out_within_100ms(engine: MediaEngine) -> None:
    alice = await publisher(engine, "alice", 440)
    carol = await publisher(engine, "carol", 660)
    probe = ProbeWire()
    engine.rooms[ROOM].add_listener("probe", "probe", probe)
    await asyncio.sleep(1.0)
    muted_at = asyncio.get_running_loop().time()
    assert engine.set_muted(ROOM, "alice", True)
    await asyncio.sleep(1.0)
    before = decode([p for t, p in probe.got if muted_at - 0.6 < t < muted_at])
    after = decode([p for t, p in probe.got if t > muted_at + 0.1])
    assert band_energy(before, 440) > 0.2
    assert band_energy(after, 440) < 0.02 and band_energy(after, 660) > 0.8
    lis = await listener(engine, "bob")
    assert band_energy(await hear(lis), 440) < 0.02
    for peer in (alice, carol, lis):
        await peer.close()


async def test_stalled_publisher_never_stalls_the_mix(engine: MediaEngine) -> None:
    alice = await publisher(engine, "alice", 440)
    carol = await publisher(engine, "carol", 660)
    probe = ProbeWire()
    engine.rooms[ROOM].add_listener("probe", "probe", probe)
    await asyncio.sleep(0.5)
    alice.pc.getTransceivers()[0].sender.replaceTrack(None)  # alice goes quiet on the wire
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(1.5)
    times = [t for t, _ in probe.got if t > t0 + 0.2]
    assert len(times) / (times[-1] - times[0]) > 45
    assert max(np.diff(times)) < 0.1
    assert band_energy(decode([p for t, p in probe.got if t > t0 + 0.3]), 660) > 0.8
    for peer in (alice, carol):
        await peer.close()


async def test_silence_when_nobody_speaks(engine: MediaEngine) -> None:
    lis = await listener(engine, "bob")
    await asyncio.sleep(0.5)
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(1.0)
    t1 = asyncio.get_running_loop().time()
    assert lis.rate(t0, t1) > 45 and lis.max_gap(t0, t1) < 0.1
    await lis.close()


async def test_slow_listener_drops_oldest_and_holds_nobody(engine: MediaEngine) -> None:
    pub = await publisher(engine, "alice", 440)
    media = engine.rooms[ROOM]
    slow, fast = ProbeWire(writable=False), ProbeWire()
    slow_outlet = media.add_listener("slow", "s", slow)
    media.add_listener("fast", "f", fast)
    await asyncio.sleep(1.0)
    assert len(fast.got) > 40
    assert len(slow_outlet.queue) == engine.config.listener_queue and slow_outlet.dropped > 40
    newest = list(slow_outlet.queue)
    slow.ok = True
    slow_outlet.flush()  # the listener catches up: it gets the newest, in order
    assert [p for _, p in slow.got] == [p.payload for p in newest]
    assert isinstance(slow_outlet, Outlet)
    await pub.close()


async def test_twenty_listeners_get_continuous_audio(engine: MediaEngine) -> None:
    pub = await publisher(engine, "alice", 440)
    listeners = await asyncio.gather(*(listener(engine, f"l{i}", decode=False) for i in range(20)))
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(2.0)
    t1 = loop.time()
    for lis in listeners:
        assert 45 < lis.rate(t0, t1) < 55
        assert lis.max_gap(t0, t1) < 0.1
    await pub.close()
    for lis in listeners:
        await lis.close()


async def test_levels_report_who_is_speaking(tmp_path: Path) -> None:
    reports: list[dict[str, float]] = []

    async def on_levels(room: str, levels: dict[str, float]) -> None:
        reports.append(levels)

    config = MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",))
    engine = MediaEngine(config, on_levels=on_levels)
    pub = await publisher(engine, "alice", 440)
    await asyncio.sleep(1.0)
    assert reports and "alice" in reports[-1] and reports[-1]["alice"] > 0.3
    assert len(reports) <= 5  # coalesced: only changes, at most 4 a second
    assert "alice" in engine.speaking(ROOM)
    engine.set_muted(ROOM, "alice", True)
    await asyncio.sleep(0.6)
    assert reports[-1] == {}
    await pub.close()
    await engine.aclose()


async def test_recording_holds_the_tone(engine: MediaEngine) -> None:
    pub = await publisher(engine, "alice", 440)
    await asyncio.sleep(2.0)
    await pub.close()
    await engine.remove_publisher(ROOM, "alice")
    await asyncio.sleep(0.1)
    (replay,) = engine.replays(ROOM)
    assert not replay.live and replay.duration_s and replay.duration_s > 1.5
    path = engine.replay_path(ROOM, replay.name)
    with av.open(str(path)) as container:
        pcm = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio=0)])
    assert band_energy(pcm.astype(np.float32), 440) > 0.8


async def test_remove_publisher_ends_its_session(engine: MediaEngine) -> None:
    pub = await publisher(engine, "alice", 440)
    assert engine.publishers(ROOM) == ["alice"]
    assert await engine.remove_publisher(ROOM, "alice")
    assert engine.publishers(ROOM) == [] and not engine.sessions
    await pub.close()


async def test_ingest_ignores_consent_and_drops_on_rtp_inactivity(engine: MediaEngine) -> None:
    pub = await publisher(engine, "alice", 440)
    (session,) = engine.sessions.values()
    await asyncio.sleep(0.2)
    conn = session.pc.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
    assert conn._query_consent_task is None or conn._query_consent_task.done()
    pub.pc.getTransceivers()[0].sender.replaceTrack(None)
    async with asyncio.timeout(6):
        while engine.sessions:
            await asyncio.sleep(0.1)
    assert session.reason == "no RTP"
    await pub.close()


async def test_expired_token_closes_the_session(engine: MediaEngine) -> None:
    import time

    async def exchange(sdp: str) -> str:
        return (await engine.listen(ROOM, "bob", sdp, expires_at=time.time() + 1.0))[1]

    lis = await AudioListener.start(exchange)
    await wait_connected(lis.pc)
    (session,) = engine.sessions.values()
    async with asyncio.timeout(4):
        while engine.sessions:
            await asyncio.sleep(0.1)
    assert session.reason == "token expired" and session.kind is Kind.LISTEN
    await lis.close()


async def test_peer_failure_or_close_is_cleaned_up_and_nothing_leaks(engine: MediaEngine) -> None:
    import gc

    from aiortc import RTCPeerConnection

    baseline = len(asyncio.all_tasks())
    pub = await publisher(engine, "alice", 440)
    listeners = [await listener(engine, f"l{i}") for i in range(3)]
    await asyncio.sleep(0.5)
    await listeners[0].close()  # the client goes away: the server peer must follow
    async with asyncio.timeout(5):
        while len(engine.sessions) > 3:
            await asyncio.sleep(0.05)
    await engine.aclose()
    await pub.close()
    for lis in listeners[1:]:
        await lis.close()
    await asyncio.sleep(0.3)
    gc.collect()
    assert not engine.sessions and not engine.rooms
    live = [o for o in gc.get_objects() if isinstance(o, RTCPeerConnection)]
    assert all(pc.connectionState == "closed" for pc in live)
    assert len(asyncio.all_tasks()) <= baseline


async def test_bad_offer_is_refused_and_creates_nothing(engine: MediaEngine) -> None:
    from kernel.errors import Invalid

    with pytest.raises(Invalid):
        await engine.publish(ROOM, "alice", "v=0\r\nnot an offer")
    with pytest.raises(Invalid):
        await engine.listen("../etc", "bob", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")
    assert not engine.sessions and not engine.rooms
