"""HLS for the huge tail (PROTOCOL v2 `GET /hls/{room}/index.m3u8?token=...`)
against a real server with a real aiortc publisher: the playlist needs a
valid room token; its segments, fetched without one as a player resolves
them, decode as AAC carrying the published tone; segments expire as the
window slides; silence keeps the stream's time continuous; everything goes
when the room's media closes. The writer alone: a feed that goes quiet is
covered by silence on a continuous timeline."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from media.hls import HlsConfig, HlsWriter, Segment
from media.mixer import OpusEncoder
from media.packets import FRAME_SAMPLES, SAMPLE_RATE, SharedPacket
from rooms import media_lease
from server import csp, tokens
from server.appkeys import ROOMS, SETTINGS, STORAGE
from server.audio.hls import HLS
from server.audio.ownership import OWNERSHIP
from server.audio.routes import MEDIA
from server.config import Settings
from tests.harness import Harness, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.hls_helpers import decode_aac, get, headers_of, playlist_url, wait_playlist
from tests.media_helpers import AudioListener, TonePublisher, peak_hz, wait_connected
from tests.test_media_http import Signal

ROOM = "stage1"  # tests.test_media_http.Signal's default room
TONE_HZ = 660.0


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(tmp_path / "data", redis_url, hls_segment_s=1.0, hls_window=3)


@pytest.fixture
async def room(server: Harness) -> str:
    await server.create_room(id=ROOM, title="hls")
    return ROOM


async def publish(server: Harness, freq: float = TONE_HZ) -> tuple[TonePublisher, Signal]:
    sig = Signal(server, "whip", server.token(ROOM, "hostess", "host"))
    pub = await TonePublisher.start(freq, sig)
    await wait_connected(pub.pc)
    return pub, sig


async def test_the_playlist_needs_a_valid_token_of_the_room(server: Harness, room: str) -> None:
    pub, _ = await publish(server)
    listener = server.token(ROOM, "ann", "listener")
    await wait_playlist(server, ROOM, listener)
    await server.create_room(id="other", title="other")
    for token in (None, "", "not-a-token", server.token("other", "ann", "listener")):
        status, _, body = await get(playlist_url(server, ROOM, token))
        assert status == 401, token
        assert b'"code": "unauthorized"' in body or b'"code":"unauthorized"' in body
    expired = server.token(ROOM, "ann", "listener", ttl_s=-10)
    assert (await get(playlist_url(server, ROOM, expired)))[0] == 401
    status, headers, body = await get(playlist_url(server, ROOM, listener))
    assert status == 200 and body.startswith(b"#EXTM3U")
    assert headers_of(headers)["content-type"].startswith("application/vnd.apple.mpegurl")
    assert headers_of(headers)["cache-control"] == "no-cache"
    await pub.close()


async def test_an_hls_link_opens_the_playlist_and_nothing_else(server: Harness, room: str) -> None:
    """The page's playlist URL (it passes through CDN logs) carries an HLS-only
    token: it opens this room's playlist until it expires, never past the room
    token, and is refused wherever a room token is asked for."""
    pub, _ = await publish(server)
    listener = server.token(ROOM, "ann", "listener", ttl_s=600)
    await wait_playlist(server, ROOM, listener)
    status, link = await server.request("POST", f"/api/v1/rooms/{ROOM}/hls-link", token=listener)
    assert status == 200, link
    assert listener not in link["url"] and "ann" not in link["url"]
    assert link["url"].startswith(f"/hls/{ROOM}/index.m3u8?token=")
    assert time.time() < link["expires_at"] <= time.time() + 600  # never past the room token
    assert (
        0 < link["expires_in"] <= 600
        and abs(time.time() + link["expires_in"] - link["expires_at"]) < 3
    )
    status, _, body = await get(server.url + link["url"])
    assert status == 200 and body.startswith(b"#EXTM3U")
    hls_token = link["url"].split("token=", 1)[1]

    # It is no room token: not for the room's API, not for WHEP, not for Socket.IO.
    status, body = await server.request("GET", f"/api/v1/rooms/{ROOM}/replays", token=hls_token)
    assert status == 401, body
    status, body = await server.request("POST", f"/api/v1/rooms/{ROOM}/hls-link", token=hls_token)
    assert status == 401, body
    whep = Signal(server, "whep", hls_token)
    with pytest.raises(PermissionError):
        await whep("v=0\r\n")
    assert whep.status == 401
    # nor another room's playlist, nor after it expired
    await server.create_room(id="other", title="other")
    assert (await get(playlist_url(server, "other", hls_token)))[0] == 401
    secret = server.settings.secret
    old = tokens.mint_hls(secret, room=ROOM, now=time.time() - 60, expires_at=time.time() - 1)
    status, _, body = await get(playlist_url(server, ROOM, old))
    assert status == 401 and b"expired" in body
    now = time.time()
    forged = tokens.mint_hls("another-secret-" * 3, room=ROOM, now=now, expires_at=now + 60)
    assert (await get(playlist_url(server, ROOM, forged)))[0] == 401

    # A link is asked for with a valid room token of that room, in the header.
    for token in (None, "not-a-token", server.token("other", "ann")):
        status, body = await server.request("POST", f"/api/v1/rooms/{ROOM}/hls-link", token=token)
        assert status == 401 and body["error"]["code"] == "unauthorized", token
    # A link from an invite's token stops with the invite.
    path = f"/api/v1/rooms/{ROOM}/tokens"
    _, invite = await server.request("POST", path, {"name": "Co", "role": "moderator"}, admin=True)
    status, link = await server.request(
        "POST", f"/api/v1/rooms/{ROOM}/hls-link", token=invite["token"]
    )
    assert status == 200 and (await get(server.url + link["url"]))[0] == 200
    status, _ = await server.request("DELETE", f"{path}/{invite['id']}", admin=True)
    assert status == 200
    status, _, body = await get(server.url + link["url"])
    assert status == 401 and b"revoked" in body
    # A room token about to run out gets a link that runs out with it.
    short = server.token(ROOM, "ann", "listener", ttl_s=30)
    status, link = await server.request("POST", f"/api/v1/rooms/{ROOM}/hls-link", token=short)
    assert status == 200 and link["expires_at"] <= time.time() + 31
    await pub.close()


def test_an_hls_link_life_under_ten_seconds_is_refused_at_start(
    tmp_path: Path, redis_url: str
) -> None:
    """A link shorter than the page's renewal margin would be renewed
    without end: the server refuses to start, naming the setting."""
    with pytest.raises(ValueError, match="DROPROOM_HLS_LINK_TTL_S"):
        make_settings(tmp_path / "data", redis_url, hls_link_ttl_s=5)
    assert make_settings(tmp_path / "data", redis_url, hls_link_ttl_s=10).hls_link_ttl_s == 10


async def test_no_playlist_while_the_room_has_no_media(server: Harness, room: str) -> None:
    status, _, body = await get(playlist_url(server, ROOM, server.token(ROOM, "ann")))
    assert status == 404 and b"not_found" in body


async def test_segments_decode_as_aac_carrying_the_published_tone(
    server: Harness, room: str
) -> None:
    pub, _ = await publish(server)
    token = server.token(ROOM, "ann", "listener")
    first = await wait_playlist(server, ROOM, token)
    playlist = await wait_playlist(server, ROOM, token, past=first.sequence + 1, segments=2)
    newest = playlist.uris[-1]
    assert "token" not in newest and newest.startswith(f"{server.url}/hls/{ROOM}/")
    session = newest.split("/")[-2]
    assert len(session) >= 22  # the unguessable part
    status, headers, body = await get(newest)  # no token, as a player asks
    assert status == 200
    assert "immutable" in headers_of(headers)["cache-control"]
    codec, pcm = decode_aac(body)
    assert codec == "aac" and pcm.size >= SAMPLE_RATE * 0.9
    assert abs(peak_hz(pcm) - TONE_HZ) < 5
    assert float(np.sqrt(np.mean(pcm**2))) > 0.05  # the tone, not silence
    _, _, body = await get(server.url + "/metrics")
    scraped = dict(
        line.rsplit(" ", 1)
        for line in body.decode().splitlines()
        if line.startswith("droproom_hls")
    )
    assert scraped["droproom_hls_streams"] == "1.0"
    assert float(scraped["droproom_hls_segments_total"]) >= 2
    assert scraped["droproom_hls_packets_dropped_total"] == "0.0"
    await pub.close()


async def test_segments_expire_as_the_window_slides_and_go_with_the_room(
    server: Harness, room: str
) -> None:
    pub, whip = await publish(server)
    token = server.token(ROOM, "ann", "listener")
    first = await wait_playlist(server, ROOM, token)
    oldest = first.uris[0]
    assert (await get(oldest))[0] == 200
    window, grace = 3, 2
    later = await wait_playlist(server, ROOM, token, past=first.sequence + window + grace + 1)
    assert len(later.uris) == window and later.sequence > first.sequence
    status, _, body = await get(oldest)
    assert status == 404 and b"not_found" in body
    files = server.app[STORAGE].local_path("hls")
    assert files is not None
    stored = list(files.rglob("*.ts"))
    assert 0 < len(stored) <= window + grace + 1
    assert await whip.request("DELETE") == 200  # the last session: the room's media closes
    await pub.close()
    async with asyncio.timeout(10):
        while (await get(playlist_url(server, ROOM, token)))[0] != 404:
            await asyncio.sleep(0.1)
    assert list(files.rglob("*.ts")) == []
    assert (await get(later.uris[-1]))[0] == 404
    assert not any((server.settings.data_dir / "run" / "hls").rglob("*.ts"))  # spool emptied


async def test_silence_keeps_flowing_when_nobody_publishes(server: Harness, room: str) -> None:
    """A WebRTC listener keeps the room's media open after the publisher
    left: HLS goes on with silence, segment after segment."""
    pub, whip = await publish(server)
    sig = Signal(server, "whep", server.token(ROOM, "lis", "listener"))
    lis = await AudioListener.start(sig, decode=False)
    await wait_connected(lis.pc)
    token = server.token(ROOM, "ann", "listener")
    await wait_playlist(server, ROOM, token)
    assert await whip.request("DELETE") == 200
    await pub.close()
    assert server.app[MEDIA].publishers(ROOM) == []
    quiet = await wait_playlist(server, ROOM, token)
    after = await wait_playlist(server, ROOM, token, past=quiet.sequence + len(quiet.uris) + 1)
    status, _, body = await get(after.uris[-1])
    assert status == 200
    codec, pcm = decode_aac(body)
    assert codec == "aac" and pcm.size >= SAMPLE_RATE * 0.9
    assert float(np.abs(pcm).max()) < 0.01
    await lis.close()


async def test_a_process_that_loses_the_media_lease_stops_writing_hls(
    server: Harness, room: str
) -> None:
    """Only the owner writes: when another process takes the room's lease,
    this one's HLS stops and its playlist and segments go."""
    pub, _ = await publish(server)
    token = server.token(ROOM, "ann", "listener")
    playlist = await wait_playlist(server, ROOM, token, segments=2)
    ownership = server.app[OWNERSHIP]
    store = server.app[ROOMS]
    ours = ownership.held[ROOM].token
    assert await media_lease.give_up(store, ROOM, ownership.holder, ours)
    thief = await media_lease.hold(store, ROOM, "another-process", {"node": "elsewhere"})
    assert thief.held and thief.token > ours
    await ownership.renew()  # finds the lease taken: drops the room's media here
    status, _, _ = await get(playlist_url(server, ROOM, token))
    assert status == 404
    assert (await get(playlist.uris[-1]))[0] == 404
    files = server.app[STORAGE].local_path("hls")
    assert files is not None and list(files.rglob("*.ts")) == []
    await pub.close()


async def test_a_process_without_the_media_lease_writes_no_hls(server: Harness, room: str) -> None:
    """A room's media may run here for a listener while another process owns
    it (until the next renewal round closes that mix): the feed goes by, but
    no HLS is written here."""
    thief = await media_lease.hold(server.app[ROOMS], ROOM, "another-process", {"node": "x"})
    assert thief.held
    sig = Signal(server, "whep", server.token(ROOM, "lis", "listener"))
    lis = await AudioListener.start(sig, decode=False)
    await wait_connected(lis.pc)
    engine = server.app[MEDIA]
    media = engine.rooms[ROOM]
    (stream,) = server.app[HLS].streams.values()
    async with asyncio.timeout(10):
        while media.feeds[None].sent < 25 and ROOM in engine.rooms:  # the tap saw packets
            await asyncio.sleep(0.02)
    assert media.feeds[None].sent > 0
    assert not stream.writer.started and stream.writer.pending == 0
    status, _, _ = await get(playlist_url(server, ROOM, server.token(ROOM, "ann")))
    assert status == 404
    async with asyncio.timeout(10):  # and the mix nobody feeds is closed
        while ROOM in engine.rooms:
            await asyncio.sleep(0.1)
    await lis.close()


async def test_segments_a_dead_process_left_are_removed_at_start(settings: Settings) -> None:
    files = settings.data_dir / "files" / "hls" / ROOM
    stale, live = files / ("s" * 22), files / ("l" * 22)
    for session in (stale, live):
        session.mkdir(parents=True)
        (session / "1.ts").write_bytes(b"\x47" * 188)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    harness = await start_server(settings)
    try:
        assert not stale.exists() and (live / "1.ts").exists()
    finally:
        await stop_server(harness)


# --- the writer alone --------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def tone_packets(encoder: OpusEncoder, start: int, count: int) -> list[SharedPacket]:
    packets = []
    for i in range(start, start + count):
        n = np.arange(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES)
        pcm = (np.sin(2 * np.pi * 440 * n / SAMPLE_RATE) * 0.3).astype(np.float32)
        packets.append(SharedPacket(encoder.encode(pcm), i * FRAME_SAMPLES, 0.0))
    return packets


async def feed(writer: HlsWriter, clock: FakeClock, packets: list[SharedPacket]) -> None:
    """Each packet taken by the writer before the clock moves 20 ms on."""
    for packet in packets:
        writer.write(packet)
        async with asyncio.timeout(5):
            while writer.pending:
                await asyncio.sleep(0.001)
        clock.advance(0.02)


async def test_a_feed_that_goes_quiet_is_covered_by_silence(tmp_path: Path) -> None:
    clock = FakeClock()
    segments: list[Segment] = []
    config = HlsConfig(segment_s=1.0, window=3)
    writer = HlsWriter("quiet", tmp_path / "spool", config, 7, segments.append, clock)
    writer.start()
    encoder = OpusEncoder()
    await feed(writer, clock, tone_packets(encoder, 0, 50))  # 1 s of tone
    clock.advance(3.0)  # then 3 s with no packet at all
    async with asyncio.timeout(10):
        while writer.filled_s < 2.5:
            await asyncio.sleep(0.05)
    # the feed comes back (its own timeline jumped the same 3 s)
    await feed(writer, clock, tone_packets(encoder, 200, 100))
    async with asyncio.timeout(10):
        while len(segments) < 5:
            await asyncio.sleep(0.05)
    audio = [decode_aac(s.path.read_bytes())[1] for s in segments[:5]]
    await asyncio.to_thread(writer.close)
    assert [s.sequence for s in segments[:5]] == [7, 8, 9, 10, 11]
    assert writer.dropped == 0 and 2.5 <= writer.filled_s <= 3.2
    # about 1 s each: the stream's time follows the clock, gap included
    assert all(abs(s.duration_s - 1.0) < 0.05 for s in segments[:5])
    # the tone, the silence that covered the gap, the tone again
    assert abs(peak_hz(audio[0]) - 440) < 5 and abs(peak_hz(audio[4]) - 440) < 5
    after_priming = SAMPLE_RATE // 10  # AAC's encoder delay carries the tone's end over
    assert float(np.abs(audio[1][after_priming:]).max()) < 0.01
    assert float(np.abs(audio[2]).max()) < 0.01
    assert not (tmp_path / "spool").exists()


def test_the_cdn_of_hls_is_allowed_by_the_pages_policy(tmp_path: Path) -> None:
    """hls.js fetches the segments from the CDN: the CSP lets it."""
    app = web.Application()
    app[SETTINGS] = make_settings(tmp_path, None, hls_base_url="https://cdn.example/live")
    header = csp.Headers(lambda _: "https://js.stripe.com/v3/").of(app)
    policy = {d.split()[0]: d.split()[1:] for d in header["Content-Security-Policy"].split("; ")}
    assert "https://cdn.example" in policy["connect-src"]
    assert "https://cdn.example" in policy["media-src"]


def test_the_tap_never_blocks_and_counts_what_a_full_queue_drops(tmp_path: Path) -> None:
    config = HlsConfig(segment_s=1.0, window=3, queue_packets=50)
    writer = HlsWriter("busy", tmp_path / "spool", config, 1, lambda _: None)  # thread not started
    packets = tone_packets(OpusEncoder(), 0, 80)
    for packet in packets:
        writer.write(packet)
    assert writer.pending == 50 and writer.dropped == 30
    writer.close()


async def test_a_paused_process_skips_the_leap_instead_of_writing_hours_of_silence(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    segments: list[Segment] = []
    writer = HlsWriter("leap", tmp_path / "spool", HlsConfig(1.0, 3), 1, segments.append, clock)
    writer.start()
    await feed(writer, clock, tone_packets(OpusEncoder(), 0, 10))
    clock.advance(3600.0)  # the process slept an hour
    async with asyncio.timeout(20):
        while len(segments) < 9:  # 10 s of silence, cut into segments
            await asyncio.sleep(0.05)
    await feed(writer, clock, tone_packets(OpusEncoder(), 180_000, 5))  # the feed resumes
    await asyncio.to_thread(writer.close)
    assert 9.5 <= writer.filled_s <= 10.5
