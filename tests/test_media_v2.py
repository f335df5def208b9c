"""Live audio v2 over HTTP against a real server: WHEP session caps (429 and
their counts in /metrics), abandoned sessions reaped with everything they
held, hostile SDP refused with nothing left behind, trickle ICE by PATCH,
and a room that is live while its stage publishes."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import weakref
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media.ice import pre_gather, rtc_configuration
from server.audio.routes import MEDIA
from server.config import Settings
from tests.harness import Harness
from tests.harness import test_settings as make_settings
from tests.media_helpers import (
    LOOPBACK,
    AudioListener,
    TonePublisher,
    abandoned_offer,
    band_energy,
    wait_connected,
)

ROOM = "v2room"
SDP = "application/sdp"


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(
        tmp_path / "data",
        redis_url,
        whep_per_identity=3,
        media_connect_timeout_s=1.0,
        live_grace_s=1.0,
    )


@pytest.fixture
async def room(server: Harness) -> str:
    await server.create_room(id=ROOM, title="v2")
    return ROOM


async def post_offer(
    server: Harness,
    token: str,
    body: bytes | str,
    kind: str = "whep",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, str]:
    """(status, JSON error body or None, Location)."""
    sent = {"Content-Type": SDP, "Authorization": f"Bearer {token}", **(headers or {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/{kind}/{ROOM}", data=body, headers=sent) as r,
    ):
        text = await r.read()
        error = await r.json(content_type=None) if r.status >= 400 else None
        del text
        return r.status, error, r.headers.get("Location", "")


async def metrics(server: Harness) -> str:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as r:
        return await r.text()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_udp_sockets() -> int:
    """This process's UDP sockets (ICE's): fds whose inode /proc/net/udp lists."""
    inodes = set()
    for table in ("/proc/self/net/udp", "/proc/self/net/udp6"):
        with open(table) as rows:
            inodes |= {row.split()[9] for row in list(rows)[1:]}
    return sum(1 for link in _fd_links() if link.startswith("socket:[") and link[8:-1] in inodes)


def _fd_links() -> list[str]:
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:  # listdir's own descriptor, already closed
            continue
    return links


async def until(predicate: Any, tries: int = 200, step_s: float = 0.05) -> bool:
    """Polls a condition a bounded number of times; True once it holds."""
    for _ in range(tries):
        if predicate():
            return True
        await asyncio.sleep(step_s)
    return bool(predicate())


# --- 1. caps and reaping ------------------------------------------------------
async def test_fourth_whep_session_of_one_identity_is_429_and_counted(
    server: Harness, room: str
) -> None:
    token = server.token(ROOM, "greedy", "listener")
    offer = await abandoned_offer()
    answers = [await post_offer(server, token, offer) for _ in range(4)]
    assert [status for status, _, _ in answers] == [201, 201, 201, 429]
    assert answers[3][1]["error"]["code"] == "rate_limited"
    assert answers[3][1]["error"]["message"].startswith("too many listening sessions")
    assert len(server.app[MEDIA].sessions) == 3
    text = await metrics(server)
    assert 'droproom_media_sessions{kind="listen"} 3.0' in text
    assert 'droproom_media_sessions_refused_total{scope="identity"} 1.0' in text
    # another identity is not held back by the greedy one
    status, _, _ = await post_offer(server, server.token(ROOM, "other", "listener"), offer)
    assert status == 201
    # closing one session gives its slot back
    location = answers[0][2]
    async with (
        aiohttp.ClientSession() as http,
        http.delete(server.url + location, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200
    assert (await post_offer(server, token, offer))[0] == 201


async def test_a_burst_of_concurrent_offers_gets_exactly_the_cap(
    server: Harness, room: str
) -> None:
    token = server.token(ROOM, "burst", "listener")
    offer = await abandoned_offer()
    answers = await asyncio.gather(*(post_offer(server, token, offer) for _ in range(12)))
    assert sorted(status for status, _, _ in answers) == [201] * 3 + [429] * 9
    assert len(server.app[MEDIA].sessions) == 3


async def test_room_and_process_caps(tmp_path: Path, redis_url: str) -> None:
    from tests.harness import start_server, stop_server

    settings = make_settings(tmp_path / "d", redis_url, whep_per_room=2, whep_per_process=3)
    server = await start_server(settings)
    try:
        await server.create_room(id=ROOM, title="v2")
        await server.create_room(id="other", title="v2")
        offer = await abandoned_offer()
        statuses = [
            (await post_offer(server, server.token(ROOM, f"l{i}", "listener"), offer))[0]
            for i in range(3)
        ]
        assert statuses == [201, 201, 429]
        sent = {"Content-Type": SDP}
        async with aiohttp.ClientSession() as http:
            codes = []
            for i in range(2):
                sent["Authorization"] = f"Bearer {server.token('other', f'o{i}', 'listener')}"
                async with http.post(f"{server.url}/whep/other", data=offer, headers=sent) as r:
                    codes.append(r.status)
        assert codes == [201, 429]  # the process holds 3
        text = await metrics(server)
        assert 'droproom_media_sessions_refused_total{scope="room"} 1.0' in text
        assert 'droproom_media_sessions_refused_total{scope="process"} 1.0' in text
    finally:
        await stop_server(server)


async def test_session_that_never_connects_is_reaped_with_all_it_held(
    server: Harness, room: str
) -> None:
    engine = server.app[MEDIA]
    offer = await abandoned_offer()
    await asyncio.sleep(0.2)  # let the client side's sockets close
    before, udp_before = open_fds(), open_udp_sockets()
    for i in range(6):
        status, _, _ = await post_offer(server, server.token(ROOM, f"gone{i}", "listener"), offer)
        assert status == 201
    peers = [weakref.ref(session.pc) for session in engine.sessions.values()]
    assert open_udp_sockets() == udp_before + 6
    # No collector: a closed peer must be freed by reference counting alone
    # (the server runs with raised GC thresholds; a cycle would linger).
    gc.disable()
    try:
        assert await until(lambda: not engine.sessions), "never-connected sessions stay"
        assert await until(lambda: open_udp_sockets() == udp_before), open_udp_sockets()
        # (a Redis pool may have grown by a connection meanwhile)
        assert await until(lambda: open_fds() <= before + 2), (open_fds(), before)
        assert await until(lambda: all(ref() is None for ref in peers)), "peers not freed"
    finally:
        gc.enable()
    assert 'droproom_media_sessions{kind="listen"} 0.0' in await metrics(server)
    # its slots are back: the same identity may listen again
    token = server.token(ROOM, "gone0", "listener")
    assert [(await post_offer(server, token, offer))[0] for _ in range(3)] == [201] * 3


# --- 2. hostile offers ----------------------------------------------------------
def without(sdp: str, prefix: str) -> str:
    return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith(prefix))


def pcmu_only(sdp: str) -> str:
    lines = []
    for line in sdp.split("\r\n"):
        if line.startswith("m=audio"):
            line = " ".join([*line.split()[:3], "0"])
        elif line.startswith(("a=rtpmap", "a=fmtp", "a=rtcp-fb")):
            continue
        lines.append(line)
    return "\r\n".join(lines)


async def test_offers_without_fingerprint_or_opus_are_refused_leaving_nothing(
    server: Harness, room: str
) -> None:
    engine = server.app[MEDIA]
    offer = await abandoned_offer()
    await asyncio.sleep(0.2)
    before, udp_before = open_fds(), open_udp_sockets()
    listener = server.token(ROOM, "lis", "listener")
    host = server.token(ROOM, "boss", "host")
    cases: list[tuple[str, str, str | bytes, int]] = [
        (listener, "whep", without(offer, "a=fingerprint"), 400),
        (host, "whip", without(offer, "a=fingerprint"), 400),
        (listener, "whep", without(offer, "a=ice-pwd"), 400),
        (listener, "whep", offer.replace("opus/48000/2", "telephone-event/8000"), 422),
        (listener, "whep", pcmu_only(offer), 422),
        (host, "whip", pcmu_only(offer), 422),
        (listener, "whep", offer.replace("m=audio", "m=video"), 400),
        (listener, "whep", b"v=0\r\n\xff\xfe\xfd garbage", 400),
        (listener, "whep", "v=0\r\nm=audio x y z\r\n", 400),
    ]
    for token, kind, body, expected in cases:
        status, error, location = await post_offer(server, token, body, kind)
        assert (status, location) == (expected, ""), (kind, body, error)
        assert error["error"]["code"] == "invalid" and error["error"]["message"]
    assert engine.sessions == {} and engine.rooms == {}
    assert engine.caps.total == 0
    assert open_udp_sockets() == udp_before
    assert await until(lambda: open_fds() <= before + 2)
    # the refused identity still has all its slots
    assert [(await post_offer(server, listener, offer))[0] for _ in range(3)] == [201] * 3


async def test_non_utf8_authorization_header_is_400_not_500(server: Harness, room: str) -> None:
    offer = (await abandoned_offer()).encode()
    host, port = "127.0.0.1", server.settings.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST /whep/{ROOM} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
        + b"Authorization: Bearer \xff\xfe\xc3(\r\n"
        + f"Content-Type: {SDP}\r\nContent-Length: {len(offer)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + offer
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"code": "invalid"' in answer
    assert server.app[MEDIA].sessions == {}


# --- 3. trickle ICE by PATCH ------------------------------------------------------
TRICKLE = "application/trickle-ice-sdpfrag"


class Whip:
    """POST an offer, keep the Location, PATCH and DELETE it."""

    def __init__(self, server: Harness, kind: str, token: str) -> None:
        self.server, self.kind, self.token = server, kind, token
        self.location = ""

    async def __call__(self, offer: str) -> str:
        sent = {"Content-Type": SDP, "Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{self.server.url}/{self.kind}/{ROOM}", data=offer, headers=sent) as r,
        ):
            answer = await r.text()
            assert r.status == 201, answer
            self.location = r.headers["Location"]
            return answer

    async def patch(
        self, body: str, token: str | None = None, content_type: str = TRICKLE, **headers: str
    ) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {token or self.token}", "Content-Type": content_type}
        async with (
            aiohttp.ClientSession() as http,
            http.patch(
                self.server.url + self.location, data=body, headers={**sent, **headers}
            ) as r,
        ):
            raw = await r.read()
            return r.status, (await r.json(content_type=None)) if raw else None


def split_candidates(sdp: str) -> tuple[str, str]:
    """(the offer without its candidates, the RFC 8840 fragment that carries them)."""
    lines = sdp.split("\r\n")
    keep = [x for x in lines if not x.startswith(("a=candidate:", "a=end-of-candidates"))]
    wanted = ("a=ice-ufrag:", "a=ice-pwd:", "a=mid:", "a=candidate:", "a=end-of-candidates")
    fragment = [x for x in lines if x.startswith(wanted)]
    return "\r\n".join(keep), "\r\n".join(fragment) + "\r\n"


async def test_candidates_sent_by_patch_connect_a_listener_that_offered_none(
    server: Harness, room: str
) -> None:
    host = Whip(server, "whip", server.token(ROOM, "boss", "host"))
    publisher = await TonePublisher.start(440, host)
    await wait_connected(publisher.pc)
    # A listener whose offer carries no candidates: they follow by PATCH.
    pc = RTCPeerConnection(rtc_configuration(LOOPBACK))
    transceiver = pc.addTransceiver("audio", direction="recvonly")
    listener = AudioListener(pc)
    listener._tap(transceiver.receiver)
    pc.on("track", listener._on_track)
    await pre_gather(pc, LOOPBACK)
    await pc.setLocalDescription(await pc.createOffer())
    bare_offer, fragment = split_candidates(pc.localDescription.sdp)
    assert "a=candidate" not in bare_offer and "a=candidate" in fragment
    whep = Whip(server, "whep", server.token(ROOM, "lis", "listener"))
    answer = await whep(bare_offer)
    assert await whep.patch(fragment) == (204, None)
    engine = server.app[MEDIA]
    session = engine.sessions[whep.location.rsplit("/", 1)[1]]
    ice = session.pc.getTransceivers()[0].receiver.transport.transport
    client_port = int(fragment.split("a=candidate:", 1)[1].split()[5])
    assert [(c.ip, c.port) for c in ice.getRemoteCandidates()] == [("127.0.0.1", client_port)]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    await wait_connected(pc)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await until(lambda: band_energy(listener.audio_since(t0), 440) > 0.9, tries=100)
    await listener.close()
    await publisher.close()


async def test_patch_refusals(server: Harness, room: str) -> None:
    offer = await abandoned_offer()
    whep = Whip(server, "whep", server.token(ROOM, "lis", "listener"))
    await whep(offer)
    creds = [x for x in offer.split("\r\n") if x.startswith(("a=ice-ufrag", "a=ice-pwd"))]
    same = "\r\n".join([*creds, "a=mid:0", "a=end-of-candidates"]) + "\r\n"
    restart = "a=ice-ufrag:zzzz\r\na=ice-pwd:0123456789abcdefghijkl\r\n"
    status, body = await whep.patch(restart)
    assert status == 422 and body["error"]["code"] == "invalid"
    assert (await whep.patch(same, content_type=SDP))[0] == 415
    assert (await whep.patch(same, token=server.token(ROOM, "other", "listener")))[0] == 403
    assert (await whep.patch(same, token=server.token("elsewhere", "lis", "listener")))[0] == 401
    assert (await whep.patch(same, token="not.a.token"))[0] == 401
    assert (await whep.patch("a=candidate:1 1 udp\r\n"))[0] == 400
    assert (await whep.patch(same, **{"If-Match": '"someone-else"'}))[0] == 412
    location = whep.location
    whep.location = location[:-4] + "abcd"
    assert (await whep.patch(same))[0] == 404
    whep.location = location
    assert (await whep.patch(same)) == (204, None)
    # TCP candidates (browsers trickle them too) are skipped, not refused
    tcp = "a=candidate:9 1 tcp 1 127.0.0.1 9 typ host tcptype active\r\n"
    assert (await whep.patch(tcp)) == (204, None)
    assert len(server.app[MEDIA].sessions) == 1


# --- 4. live grace ------------------------------------------------------------------
def is_live(value: bool) -> Any:
    return lambda data: data["room"]["id"] == ROOM and data["room"]["live"] is value


async def test_room_is_live_while_its_stage_publishes_then_ends_after_the_grace(
    server: Harness, room: str
) -> None:
    watcher = await server.connect(ROOM, "watcher")
    assert (await watcher.wait_for("room:state"))["room"]["live"] is False
    host = Whip(server, "whip", server.token(ROOM, "boss", "host"))
    publisher = await TonePublisher.start(440, host)
    await wait_connected(publisher.pc)
    await watcher.wait_for("room:updated", is_live(True), timeout=10)
    # still publishing two graces later: still live
    await asyncio.sleep(2 * server.settings.live_grace_s)
    assert not [e for e in watcher.received("room:updated") if not e["room"]["live"]]
    status, snapshot = await server.request(
        "GET", f"/api/v1/rooms/{ROOM}", token=server.token(ROOM, "watcher")
    )
    assert status == 200 and snapshot["room"]["live"] is True
    # the host's tab closes: no DELETE, the peer just goes
    await publisher.close()
    await watcher.wait_for("room:updated", is_live(False), timeout=15)
    assert not server.app[MEDIA].rooms_publishing()
    status, snapshot = await server.request(
        "GET", f"/api/v1/rooms/{ROOM}", token=server.token(ROOM, "watcher")
    )
    assert snapshot["room"]["live"] is False


async def test_room_set_live_by_hand_with_nobody_publishing_ends_after_the_grace(
    server: Harness, room: str
) -> None:
    host = await server.connect(ROOM, "boss", "host")
    answer = await host.call("room:update", {"live": True})
    assert answer["ok"] and answer["room"]["live"] is True
    await host.wait_for("room:updated", is_live(False), timeout=10)
    assert len([e for e in host.received("room:updated") if not e["room"]["live"]]) == 1


async def test_live_grace_is_decided_on_the_clock_passed_in(redis_url: str) -> None:
    """rooms/live.py alone, on the real Redis, with `now` handed in."""
    import redis.asyncio as aioredis

    from rooms import lifecycle, live
    from rooms.store import RoomStore

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = RoomStore(client)
    try:
        await lifecycle.create(store, {"id": "clock", "title": "t"}, now=0.0)
        went = await live.started_publishing(store, "clock", now=100.0, grace_s=60)
        assert [e.payload["room"]["live"] for e in went] == [True]
        assert await live.started_publishing(store, "clock", now=110.0, grace_s=60) == []
        await live.still_publishing(store, ["clock"], now=130.0, grace_s=60)
        assert await live.end_idle(store, now=189.9, grace_s=60) == []  # seen at 130
        ended = await live.end_idle(store, now=190.0, grace_s=60)
        assert [(e.name, e.payload["room"]["live"]) for e in ended] == [("room:updated", False)]
        assert await live.end_idle(store, now=500.0, grace_s=60) == []  # once
        assert (await store.get_room("clock")).live is False  # type: ignore[union-attr]
        # a host who ends the live by hand while still publishing is not overruled
        await live.started_publishing(store, "clock", now=600.0, grace_s=60)
        await lifecycle.update(store, "clock", {"live": False}, now=601.0, by="host")
        await live.still_publishing(store, ["clock"], now=605.0, grace_s=60)
        assert (await store.get_room("clock")).live is False  # type: ignore[union-attr]
        entries: Any = await client.xrange("{room:clock}:log")
        assert [json.loads(e[1]["data"]) for e in entries[-4:-2]] == [
            {"live": "1", "by": "stage"},
            {"live": "0", "by": "stage"},
        ]
    finally:
        await client.aclose()


# --- pure parts, table-like -----------------------------------------------------------
def test_fragment_reading() -> None:
    from kernel.errors import Invalid
    from media.trickle import MAX_CANDIDATES, IceRestart, parse_fragment

    text = (
        "a=ice-ufrag:ab\r\na=ice-pwd:secret\r\n"
        "a=candidate:1 1 udp 2130706431 192.0.2.1 5000 typ host\r\n"
        "a=mid:1\r\n"
        "a=candidate:2 1 UDP 1694498815 198.51.100.7 6000 typ srflx raddr 0.0.0.0 rport 0\r\n"
        "a=candidate:3 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\n"
        "a=candidate:4 2 udp 2130706430 192.0.2.1 5001 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    fragment = parse_fragment(text, default_mid="0")
    assert [(c.ip, c.port, c.sdpMid, c.type) for c in fragment.candidates] == [
        ("192.0.2.1", 5000, "0", "host"),
        ("198.51.100.7", 6000, "1", "srflx"),
    ]
    assert fragment.end_of_candidates and (fragment.ufrag, fragment.pwd) == ("ab", "secret")
    fragment.check_credentials("ab", "secret")
    parse_fragment("a=end-of-candidates", None).check_credentials("ab", "secret")
    for ufrag, pwd in (("other", "secret"), ("ab", "other"), (None, None)):
        with pytest.raises(IceRestart):
            fragment.check_credentials(ufrag, pwd)
    with pytest.raises(Invalid):
        parse_fragment("a=candidate:1 1 udp x 192.0.2.1 5000 typ host", None)
    many = "a=candidate:1 1 udp 1 192.0.2.1 5000 typ host\r\n" * (MAX_CANDIDATES + 1)
    with pytest.raises(Invalid):
        parse_fragment(many, None)


def test_caps_count_and_give_back() -> None:
    from kernel.errors import RateLimited
    from media.caps import Limits, Scope, SessionCaps

    caps = SessionCaps(Limits(per_identity=2, per_room=3, per_process=4))
    steps = [("r", "a"), ("r", "a"), ("r", "a"), ("r", "b"), ("r", "c"), ("s", "a"), ("t", "z")]
    outcomes = []
    for room_id, identity in steps:
        try:
            caps.take(room_id, identity)
            outcomes.append("ok")
        except RateLimited:
            outcomes.append(str(caps.full_scope(room_id, identity)))
    assert outcomes == ["ok", "ok", "identity", "ok", "room", "ok", "process"]
    assert dict(caps.refused) == {Scope.IDENTITY: 1, Scope.ROOM: 1, Scope.PROCESS: 1}
    for room_id, identity in [("r", "a"), ("r", "a"), ("r", "b"), ("s", "a"), ("s", "a")]:
        caps.give_back(room_id, identity)  # the last one is one too many: ignored
    assert (caps.total, dict(caps.by_room), dict(caps.by_identity)) == (0, {}, {})
    with pytest.raises(ValueError):
        Limits(per_identity=0)
