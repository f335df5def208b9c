"""WHIP/WHEP over HTTP against a real server: auth and stage rules, CORS and
ICE-server headers, DELETE and PATCH, stage hooks, speaking levels, replays
served with range requests."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from media.config import IceServer
from server.appkeys import SETTINGS
from server.audio.routes import MEDIA
from tests.harness import Harness
from tests.media_helpers import AudioListener, TonePublisher, band_energy, wait_connected

ROOM = "stage1"
SDP_HEADERS = {"Content-Type": "application/sdp"}


class Signal:
    """WHIP/WHEP client side: POST the offer, keep the Location for DELETE."""

    def __init__(self, server: Harness, kind: str, token: str, room: str = ROOM) -> None:
        self.url = f"{server.url}/{kind}/{room}"
        self.base = server.url
        self.token = token
        self.status = 0
        self.headers: Any = {}
        self.location = ""

    async def __call__(self, offer: str) -> str:
        headers = {**SDP_HEADERS, "Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, data=offer, headers=headers) as r,
        ):
            self.status, self.headers = r.status, r.headers
            body = await r.text()
        if r.status != 201:
            raise PermissionError(f"{r.status}: {body}")
        self.location = r.headers["Location"]
        return body

    async def request(self, method: str, body: str = "", token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if body:
            headers["Content-Type"] = "application/trickle-ice-sdpfrag"
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                method, self.base + self.location, data=body or None, headers=headers
            ) as r,
        ):
            return r.status


@pytest.fixture
async def room(server: Harness) -> str:
    await server.create_room(id=ROOM, title="stage")
    return ROOM


async def publish(
    server: Harness, identity: str, role: str, freq: float = 440
) -> tuple[TonePublisher, Signal]:
    sig = Signal(server, "whip", server.token(ROOM, identity, role))
    pub = await TonePublisher.start(freq, sig)
    await wait_connected(pub.pc)
    return pub, sig


async def test_host_publishes_and_listener_hears_then_delete(server: Harness, room: str) -> None:
    pub, whip = await publish(server, "hostess", "host")
    assert whip.status == 201 and whip.headers["Content-Type"].startswith("application/sdp")
    assert whip.location.startswith(f"/whip/{ROOM}/") and len(whip.location.split("/")[-1]) >= 32
    assert "127.0.0.1" in (pub.pc.remoteDescription.sdp or "")
    whep = Signal(server, "whep", server.token(ROOM, "lenny", "listener"))
    lis = await AudioListener.start(whep)
    await wait_connected(lis.pc)
    await asyncio.sleep(1.0)
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(1.0)
    assert band_energy(lis.audio_since(t0), 440) > 0.9
    engine = server.app[MEDIA]
    assert len(engine.sessions) == 2
    assert await whip.request("DELETE", token=server.token(ROOM, "lenny", "listener")) == 403
    assert await whip.request("DELETE") == 200
    assert await whep.request("DELETE") == 200
    assert not engine.sessions
    await pub.close()
    await lis.close()


async def test_refusals_create_nothing(server: Harness, room: str) -> None:
    await server.create_room(id="other", title="other")
    engine = server.app[MEDIA]
    cases = [
        (server.token(ROOM, "lenny", "listener"), 403),
        (server.token("other", "hostess", "host"), 401),
        (server.token(ROOM, "sam", "speaker"), 403),  # not on stage
        (server.token(ROOM, "mo", "moderator"), 403),  # not on stage
        ("forged.token.value", 401),
    ]
    for token, status in cases:
        sig = Signal(server, "whip", token)
        with pytest.raises(PermissionError):
            await sig("v=0\r\n")
        assert sig.status == status, token
    whep = Signal(server, "whep", server.token("other", "lenny", "listener"))
    with pytest.raises(PermissionError):
        await whep("v=0\r\n")
    assert whep.status == 401
    assert not engine.sessions and not engine.rooms


async def test_speaker_on_stage_publishes_and_stage_remove_ends_it(
    server: Harness, room: str
) -> None:
    host = await server.connect(ROOM, "hostess", "host")
    await server.connect(ROOM, "sam", "speaker")
    assert (await host.call("stage:invite", {"identity": "sam"}))["ok"]
    pub, whip = await publish(server, "sam", "speaker")
    engine = server.app[MEDIA]
    assert engine.publishers(ROOM) == ["sam"]
    assert (await host.call("speaker:mute", {"identity": "sam", "muted": True}))["ok"]
    assert engine.rooms[ROOM].publishers["sam"].muted
    assert (await host.call("speaker:mute", {"identity": "sam", "muted": False}))["ok"]
    assert not engine.rooms[ROOM].publishers["sam"].muted
    assert (await host.call("stage:remove", {"identity": "sam"}))["ok"]
    assert engine.publishers(ROOM) == [] and not engine.sessions
    assert await whip.request("DELETE") == 404
    await pub.close()


async def test_ice_restart_patch_is_422_and_options_answer_cors(server: Harness, room: str) -> None:
    pub, whip = await publish(server, "hostess", "host")
    restart = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n"
    assert await whip.request("PATCH", restart) == 422
    async with aiohttp.ClientSession() as http, http.options(f"{server.url}/whip/{ROOM}") as r:
        assert r.status == 204
        assert r.headers["Accept-Post"] == "application/sdp"
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Location" in r.headers["Access-Control-Expose-Headers"]
    await pub.close()


async def test_ice_servers_go_out_as_link_headers(server: Harness, room: str) -> None:
    engine = server.app[MEDIA]
    object.__setattr__(
        engine.config,
        "ice_servers",
        (IceServer(("stun:127.0.0.1:3478",)), IceServer(("turn:127.0.0.1:3478",), "u", "p")),
    )
    async with aiohttp.ClientSession() as http, http.options(f"{server.url}/whep/{ROOM}") as r:
        link = r.headers["Link"]
    assert '<stun:127.0.0.1:3478>; rel="ice-server"' in link
    assert '<turn:127.0.0.1:3478>; rel="ice-server"; username="u"; credential="p"' in link


async def test_speaking_levels_and_replays_in_room_state(server: Harness, room: str) -> None:
    watcher = await server.connect(ROOM, "lenny", "listener")
    pub, whip = await publish(server, "hostess", "host")
    speaking = await watcher.wait_for(
        "speaking:updated", lambda d: any(s["identity"] == "hostess" for s in d["speaking"])
    )
    assert speaking["speaking"][0]["level"] > 0
    await asyncio.sleep(1.5)
    assert await whip.request("DELETE") == 200
    await pub.close()
    late = await server.connect(ROOM, "lara", "listener")
    state = late.received("room:state")[0]
    (replay,) = state["replays"]
    assert replay["duration_s"] > 1 and not replay["live"]
    token = server.token(ROOM, "lara", "listener")
    url = f"{server.url}{replay['url']}?token={token}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Range": "bytes=0-99"}) as r:
            assert r.status == 206 and len(await r.read()) == 100
            assert r.headers["Content-Range"].startswith("bytes 0-99/")
        async with http.get(f"{server.url}{replay['url']}") as r:
            assert r.status == 401
        async with http.get(url.replace(replay["name"], "..%2Fsecret")) as r:
            assert r.status == 404
    assert server.app[SETTINGS].recordings_dir.is_dir()
