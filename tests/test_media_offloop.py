"""Audio off the event loop (issue 15): the rooms' ticks (decode, mix,
encode) run on the process's media thread; the loop only gets each tick's
packets back, pushes them to listeners and taps, and stays free for
Socket.IO and HTTP while three speakers are mixed."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from media.config import MediaConfig
from media.engine import MediaEngine
from media.mixer import Emission, OpusEncoder
from media.packets import FRAME_SAMPLES, SAMPLE_RATE, SharedPacket
from media.ticker import SWITCH_INTERVAL_S
from media.wire import RtpWire
from tests.media_helpers import (
    AudioListener,
    TonePublisher,
    band_energy,
    peak_hz,
    wait_connected,
)
from tests.test_media_engine import ProbeWire, decode

ROOM = "r1"
VOICES = {"alice": 440.0, "carol": 660.0, "dave": 880.0}


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[MediaEngine]:
    eng = MediaEngine(MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), record=False))
    yield eng
    await eng.aclose()


def tone_packets(freq: float, count: int = 50) -> list[bytes]:
    """One second of a pure tone as 20 ms Opus packets."""
    encoder = OpusEncoder()
    n = np.arange(count * FRAME_SAMPLES)
    pcm = (0.3 * np.sin(2 * np.pi * freq * n / SAMPLE_RATE)).astype(np.float32)
    return [encoder.encode(pcm[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(count)]


async def three_speakers(engine: MediaEngine) -> list[TonePublisher]:
    pubs = []
    for identity, freq in VOICES.items():

        async def exchange(sdp: str, identity: str = identity) -> str:
            return (await engine.publish(ROOM, identity, sdp))[1]

        pub = await TonePublisher.start(freq, exchange)
        await wait_connected(pub.pc)
        pubs.append(pub)
    return pubs


async def test_three_speakers_are_mixed_on_the_media_thread(engine: MediaEngine) -> None:
    pubs = await three_speakers(engine)
    media = engine.rooms[ROOM]
    probe = ProbeWire()
    media.add_listener("probe", "bob", probe)
    where: set[int] = set()
    mix = media.mix

    def watched(tick_no: int) -> list[Emission]:
        where.add(threading.get_ident())
        return mix(tick_no)

    media.mix = watched  # type: ignore[method-assign]
    await asyncio.sleep(1.5)
    assert engine.ticker is not None and engine.ticker.ident is not None
    assert where == {engine.ticker.ident}
    assert threading.get_ident() not in where
    assert sys.getswitchinterval() <= SWITCH_INTERVAL_S  # the thread gets the GIL back soon
    heard = decode([p for _, p in probe.got[-40:]])
    for freq in VOICES.values():  # all three voices in the mix, each clearly
        assert band_energy(heard, freq) > 0.15
    assert media.mixer.encoded > 0
    for pub in pubs:
        await pub.close()


async def test_taps_and_listeners_get_every_tick_on_the_loop(engine: MediaEngine) -> None:
    pubs = await three_speakers(engine)
    media = engine.rooms[ROOM]
    loop_thread = threading.get_ident()
    tapped: list[tuple[int, int]] = []

    def tap(packet: SharedPacket) -> None:
        tapped.append((threading.get_ident(), packet.timestamp))

    media.feeds[None].taps.append(tap)
    probe = ProbeWire()
    media.add_listener("probe", "bob", probe)
    await asyncio.sleep(1.0)
    assert {t for t, _ in tapped} == {loop_thread}
    stamps = [ts for _, ts in tapped]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len(tapped) >= 30  # ~50 a second; the loop got every tick's batch
    assert len(probe.got) >= 30
    for pub in pubs:
        await pub.close()


async def test_the_loop_answers_http_while_a_slow_mix_runs(engine: MediaEngine) -> None:
    """A tick that takes 0.4 s (a stand-in for an overloaded encoder) holds
    only the media thread: HTTP round trips on the loop go on being answered
    (on the loop, each would wait up to 0.4 s behind it)."""
    pubs = await three_speakers(engine)
    media = engine.rooms[ROOM]
    mix = media.mix
    slow_ticks = 0

    def slow(tick_no: int) -> list[Emission]:
        nonlocal slow_ticks
        if tick_no % 5 == 0:
            slow_ticks += 1
            time.sleep(0.4)  # releases the GIL like PyAV's codecs do
        return mix(tick_no)

    media.mix = slow  # type: ignore[method-assign]

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ping", ping)
    async with TestClient(TestServer(app)) as client:
        waits = []
        loop = asyncio.get_running_loop()
        end = loop.time() + 2.0
        while loop.time() < end:
            started = loop.time()
            async with client.get("/ping") as response:
                assert (await response.json()) == {"ok": True}
            waits.append(loop.time() - started)
            await asyncio.sleep(0.01)
    assert slow_ticks >= 2
    assert max(waits) < 0.2
    for pub in pubs:
        await pub.close()


async def test_loop_mode_keeps_the_tick_on_the_loop(tmp_path: Path) -> None:
    """The baseline switch (benchmarks): no media thread, the tick is a task."""
    config = MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), media_thread=False)
    eng = MediaEngine(config)
    try:
        pubs = await three_speakers(eng)
        media = eng.rooms[ROOM]
        probe = ProbeWire()
        media.add_listener("probe", "bob", probe)
        await asyncio.sleep(1.0)
        assert eng.ticker is None
        heard = decode([p for _, p in probe.got[-40:]])
        assert all(band_energy(heard, f) > 0.15 for f in VOICES.values())
        for pub in pubs:
            await pub.close()
    finally:
        await eng.aclose()


async def test_the_media_thread_ends_with_the_engine(tmp_path: Path) -> None:
    eng = MediaEngine(MediaConfig(data_dir=tmp_path, ice_hosts=("127.0.0.1",), record=False))
    pubs = await three_speakers(eng)
    assert eng.ticker is not None
    thread = next(t for t in threading.enumerate() if t.ident == eng.ticker.ident)
    for pub in pubs:
        await pub.close()
    await eng.aclose()
    assert not thread.is_alive()


async def test_a_wire_whose_peer_closed_refuses_quietly(engine: MediaEngine) -> None:
    """The send path holds the socket it looked up once: after the session
    closed, a packet still in flight to it is counted, not raised."""

    async def exchange(sdp: str) -> str:
        return (await engine.listen(ROOM, "bob", sdp))[1]

    lis = await AudioListener.start(exchange, decode=False)
    await wait_connected(lis.pc)
    await asyncio.sleep(0.3)
    session_id, (_, outlet) = next(iter(engine.rooms[ROOM].listeners.items()))
    wire = outlet.wire
    assert isinstance(wire, RtpWire) and wire.packets > 5 and wire.failed == 0
    await engine.close(session_id)
    await asyncio.sleep(0.05)
    wire.write(SharedPacket(b"\xf8\xff\xfe", 960, 0.0))
    assert wire.failed == 1
    await lis.close()


async def test_a_forwarded_voice_is_sent_from_the_media_thread(engine: MediaEngine) -> None:
    """One voice is forwarded unchanged; its packets are still written to the
    listeners' RTP wires by the media thread (one writer per wire), at once."""

    async def speak(sdp: str) -> str:
        return (await engine.publish(ROOM, "alice", sdp))[1]

    async def listen(sdp: str) -> str:
        return (await engine.listen(ROOM, "bob", sdp))[1]

    pub = await TonePublisher.start(440.0, speak)
    await wait_connected(pub.pc)
    lis = await AudioListener.start(listen)
    await wait_connected(lis.pc)
    ((_, outlet),) = engine.rooms[ROOM].listeners.values()
    wire = outlet.wire
    assert isinstance(wire, RtpWire)
    writers: set[int] = set()
    write = wire.write

    def watched(packet: SharedPacket) -> None:
        writers.add(threading.get_ident())
        write(packet)

    wire.write = watched  # type: ignore[method-assign]
    await asyncio.sleep(1.0)
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(1.2)
    heard = lis.audio_since(t0)
    assert band_energy(heard, 440.0) > 0.9
    assert engine.rooms[ROOM].mixer.encoded == 0  # forwarded, not re-encoded
    assert engine.ticker is not None and writers == {engine.ticker.ident}
    await pub.close()
    await lis.close()


async def test_packets_handed_over_from_the_loop_reach_wires_and_taps(
    engine: MediaEngine,
) -> None:
    """What a relay feeds into a room from the loop (`RoomMedia.hand_over`)
    is written to the listeners' wires by the media thread and tapped on the
    loop, like the room's own packets."""

    async def listen(sdp: str) -> str:
        return (await engine.listen(ROOM, "bob", sdp))[1]

    lis = await AudioListener.start(listen)
    await wait_connected(lis.pc)
    media = engine.rooms[ROOM]
    ((_, outlet),) = media.listeners.values()
    writers: set[int] = set()
    write = outlet.wire.write

    def watched(packet: SharedPacket) -> None:
        writers.add(threading.get_ident())
        write(packet)

    outlet.wire.write = watched  # type: ignore[method-assign]
    tone = tone_packets(440.0)
    tapped: list[tuple[int, bytes]] = []
    media.feeds[None].taps.append(lambda p: tapped.append((threading.get_ident(), p.payload)))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for k in range(100):  # two seconds of a relayed voice, one packet per 20 ms
        feed = media.feeds[None]
        media.hand_over([(feed, tone[k % len(tone)], "relay", k * 960, loop.time())])
        await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.02 - loop.time()))
    heard = lis.audio_since(t0 + 0.5)
    assert band_energy(heard, 440.0) > 0.3  # between the tick's silence frames
    assert abs(peak_hz(heard) - 440.0) < 10
    assert engine.ticker is not None and writers == {engine.ticker.ident}
    relayed = [p for t, p in tapped if p in tone]
    assert len(relayed) >= 90 and {t for t, _ in tapped} == {threading.get_ident()}
    await lis.close()


async def test_every_peer_presents_one_dtls_certificate(engine: MediaEngine) -> None:
    """A join makes no new key and certificate (aiortc's default, ~2.4 ms of
    the loop per answer): every answer carries the same fingerprint, and the
    peers still connect and hear the room."""
    answers: list[str] = []

    async def listen(sdp: str) -> str:
        answer = (await engine.listen(ROOM, f"l{len(answers)}", sdp))[1]
        answers.append(answer)
        return answer

    ears = [await AudioListener.start(listen, decode=False) for _ in range(3)]
    for ear in ears:
        await wait_connected(ear.pc)
    fingerprints = [
        {line for line in answer.splitlines() if line.startswith("a=fingerprint:")}
        for answer in answers
    ]
    assert len(answers) == 3 and fingerprints[0]
    assert fingerprints[0] == fingerprints[1] == fingerprints[2]
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    t1 = loop.time()
    for ear in ears:
        assert ear.rate(t1 - 0.4, t1) > 40
        await ear.close()
