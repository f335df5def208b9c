"""Invite links of the creator studio: minted by a room's owner (or the
admin) with a lifetime from the settings, listed without their tokens,
revoked: the token is refused on every route, WHIP/WHEP and at connect, and
its open connections are closed. Another creator sees and changes nothing."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
import socketio

from rooms.invites import Invites
from server.appkeys import ROOMS
from server.config import Settings
from tests.harness import (
    SECRET,
    Client,
    Harness,
    connect,
    free_port,
    start_server,
    stop_server,
)
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer
from tests.studio_helpers import Person, buyer, creator, forbidden, make_room, server_connect


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url)


@pytest.fixture
async def ann(server: Harness, smtp: SmtpServer) -> Person:
    return await creator(server, smtp, "ann@example.com", "Ann")


@pytest.fixture
async def bob(server: Harness, smtp: SmtpServer) -> Person:
    return await creator(server, smtp, "bob@example.com", "Bob")


# --- 4. invite links -------------------------------------------------------------


async def disconnected(client: Client) -> bool:
    async with asyncio.timeout(5):
        while client.sio.connected:
            await asyncio.sleep(0.05)
    return True


async def test_an_owner_mints_invite_links_that_last_a_week(server: Harness, ann: Person) -> None:
    await make_room(server, ann, "ann-team")
    path = "/api/v1/rooms/ann-team/tokens"
    status, body = await ann.call(server, "POST", path, {"name": "Mo", "role": "moderator"})
    assert status == 201, body
    assert body["role"] == "moderator" and body["name"] == "Mo"
    assert body["identity"].startswith("moderator-")
    assert body["url"] == f"{server.url}/host/ann-team#token={body['token']}"
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["jti"] == body["id"] and claims["room"] == "ann-team"
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600 == body["expires_at"] - claims["iat"]
    mod = await server_connect(server, body["token"])
    assert mod.received("room:state")[0]["me"]["role"] == "moderator"
    status, body = await ann.call(
        server, "POST", path, {"identity": "dj", "name": "DJ", "role": "speaker", "ttl_s": 3600}
    )
    assert status == 201 and body["identity"] == "dj"
    assert body["url"].startswith(f"{server.url}/r/ann-team#token=")
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 3600
    for bad in (
        {"identity": "acct_0123", "name": "x", "role": "host"},
        {"identity": "guest-abc", "name": "x", "role": "host"},
        {"name": "x", "role": "owner"},
        {"role": "host"},
        {"name": "x", "role": "host", "ttl_s": 10**9},
        {"name": "x", "role": "host", "identity": "a b"},
    ):
        status, answer = await ann.call(server, "POST", path, bad)
        assert status == 400 and answer["error"]["code"] == "invalid", (bad, answer)
    status, answer = await server.request(
        "POST", path, {"name": "Admin's", "role": "host"}, admin=True
    )
    assert status == 201
    _, listed = await ann.call(server, "GET", path)
    assert [t["name"] for t in listed["tokens"]] == ["Mo", "DJ", "Admin's"]


async def test_the_invite_lifetime_is_a_setting(
    tmp_path: Path, redis_url: str, smtp: SmtpServer
) -> None:
    settings = make_settings(tmp_path / "d2", redis_url, smtp_url=smtp.url, invite_ttl_s=7200)
    server = await start_server(settings)
    try:
        await server.create_room(id="short")
        status, body = await server.request(
            "POST", "/api/v1/rooms/short/tokens", {"name": "Co", "role": "host"}, admin=True
        )
        assert status == 201
        claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
        assert claims["exp"] - claims["iat"] == 7200
        listed = await Invites(server.app[ROOMS]).listed("short", time.time() + 7300)
        assert listed == []  # expired invites are not listed
    finally:
        await stop_server(server)
    with pytest.raises(ValueError, match="DROPROOM_INVITE_TTL_S"):
        make_settings(tmp_path / "d3", redis_url, invite_ttl_s=0)


async def test_the_list_never_shows_a_token_and_other_creators_see_nothing(
    server: Harness, smtp: SmtpServer, ann: Person, bob: Person
) -> None:
    await make_room(server, ann, "ann-crew")
    path = "/api/v1/rooms/ann-crew/tokens"
    _, minted = await ann.call(server, "POST", path, {"name": "Co", "role": "host"})
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + path, headers={"Authorization": f"Bearer {ann.token}"}) as resp,
    ):
        raw = await resp.text()
    assert resp.status == 200 and minted["token"] not in raw
    [item] = json.loads(raw)["tokens"]
    assert set(item) == {"id", "identity", "name", "role", "created_at", "expires_at", "revoked"}
    assert item["revoked"] is False and item["id"] == minted["id"]
    assert forbidden(*await bob.call(server, "GET", path))
    assert forbidden(*await bob.call(server, "POST", path, {"name": "x", "role": "host"}))
    assert forbidden(*await bob.call(server, "DELETE", f"{path}/{minted['id']}"))
    someone = await buyer(server, smtp, "fan@example.com")
    assert forbidden(*await someone.call(server, "GET", path))
    cohost = minted["token"]  # a host's room token is no owner: it mints nothing
    status, _ = await server.request("POST", path, {"name": "x", "role": "host"}, token=cohost)
    assert status == 401
    status, _ = await server.request("GET", path)
    assert status == 401
    _, listed = await ann.call(server, "GET", path)
    assert [t["revoked"] for t in listed["tokens"]] == [False]  # bob's attempt changed nothing


async def test_a_revoked_invite_is_closed_and_refused_everywhere(
    server: Harness, ann: Person
) -> None:
    await make_room(server, ann, "ann-rev")
    path = "/api/v1/rooms/ann-rev/tokens"
    _, gone = await ann.call(server, "POST", path, {"name": "Co", "role": "host"})
    _, kept = await ann.call(server, "POST", path, {"name": "Mo", "role": "moderator"})
    first = await server_connect(server, gone["token"])
    second = await server_connect(server, gone["token"])
    other = await server_connect(server, kept["token"])
    status, body = await ann.call(server, "DELETE", f"{path}/{gone['id']}")
    assert status == 200 and body["token"]["revoked"] is True and body["closed"] == 2
    for client in (first, second):
        expired = await client.wait_for("session:expired")
        assert expired["code"] == "unauthorized" and "revoked" in expired["message"]
        assert await disconnected(client)
    assert other.sio.connected and (await other.call("chat:send", {"text": "still here"}))["ok"]
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(server.url, gone["token"])
    status, body = await server.request("GET", "/api/v1/rooms/ann-rev", token=gone["token"])
    assert status == 401 and "revoked" in body["error"]["message"]
    status, body = await server.request("GET", f"/api/v1/rooms/ann-rev?token={gone['token']}")
    assert status == 401
    offer = {"Content-Type": "application/sdp", "Authorization": f"Bearer {gone['token']}"}
    for endpoint in ("/whip/ann-rev", "/whep/ann-rev"):
        async with (
            aiohttp.ClientSession() as http,
            http.post(server.url + endpoint, data="v=0\r\n", headers=offer) as resp,
        ):
            assert resp.status == 401, endpoint
    status, _ = await server.request("GET", "/api/v1/rooms/ann-rev", token=kept["token"])
    assert status == 200
    _, listed = await ann.call(server, "GET", path)
    assert [(t["name"], t["revoked"]) for t in listed["tokens"]] == [("Co", True), ("Mo", False)]
    status, _ = await ann.call(server, "DELETE", f"{path}/inv_nope")
    assert status == 404


async def test_revoking_closes_the_invites_sockets_on_another_node(settings: Settings) -> None:
    """Two server processes on one Redis: the invite's connection is on b,
    the owner revokes through a; b closes the connection and refuses it."""
    a = await start_server(settings.with_(multi_node=True))
    b = await start_server(settings.with_(multi_node=True, port=free_port()))
    try:
        await a.create_room(id="two-nodes")
        path = "/api/v1/rooms/two-nodes/tokens"
        status, invite = await a.request("POST", path, {"name": "Co", "role": "host"}, admin=True)
        assert status == 201
        far = await connect(b.url, invite["token"])
        await far.wait_for("room:state")
        status, body = await a.request("DELETE", f"{path}/{invite['id']}", admin=True)
        assert status == 200 and body["closed"] == 1
        await far.wait_for("session:expired")
        assert await disconnected(far)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(b.url, invite["token"])
        status, _ = await b.request("GET", "/api/v1/rooms/two-nodes", token=invite["token"])
        assert status == 401
    finally:
        await stop_server(b)
        await stop_server(a)
