"""The foundation's HTTP routes: health, tokens, rooms, guests, errors."""

import aiohttp
import jwt

from server.appkeys import SETTINGS
from tests.harness import SECRET, Harness


async def test_healthz_answers_when_redis_answers(server: Harness) -> None:
    status, body = await server.request("GET", "/healthz")
    settings = server.app[SETTINGS]
    assert (status, body) == (200, {"ok": True, "node": settings.node, "worker": "w1"})
    assert body["node"].endswith(f":{settings.port}")  # stable: the host and the port


async def test_admin_mints_a_token_that_opens_the_room(server: Harness) -> None:
    await server.create_room(id="t1")
    status, body = await server.request(
        "POST",
        "/api/v1/tokens",
        admin=True,
        json={"room": "t1", "identity": "ann", "name": "Ann", "role": "moderator", "ttl_s": 60},
    )
    assert status == 200
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["room"], claims["role"], claims["name"]) == (
        "ann",
        "t1",
        "moderator",
        "Ann",
    )
    status, state = await server.request("GET", "/api/v1/rooms/t1", token=body["token"])
    assert status == 200 and state["me"]["role"] == "moderator"


async def test_admin_routes_refuse_without_the_admin_key(server: Harness) -> None:
    status, body = await server.request("POST", "/api/v1/rooms", json={"title": "x"})
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = await server.request(
        "POST", "/api/v1/rooms", json={"title": "x"}, token="not-the-key"
    )
    assert status == 401
    status, body = await server.request(
        "POST", "/api/v1/tokens", json={"room": "t1", "identity": "a", "role": "host"}
    )
    assert status == 401


async def test_token_requests_are_validated(server: Harness) -> None:
    await server.create_room(id="t2")
    bad = [
        {"room": "t2", "identity": "a", "role": "emperor"},
        {"room": "t2", "identity": "", "role": "host"},
        {"room": "t2", "identity": "a b", "role": "host"},
        {"room": "t2", "identity": "a", "role": "host", "ttl_s": -5},
        {"room": "t2", "identity": "a", "role": "host", "ttl_s": "60"},
        {"room": 5, "identity": "a", "role": "host"},
    ]
    for body in bad:
        status, answer = await server.request("POST", "/api/v1/tokens", json=body, admin=True)
        assert status == 400 and answer["error"]["code"] == "invalid", body
    status, answer = await server.request(
        "POST",
        "/api/v1/tokens",
        json={"room": "nope", "identity": "a", "role": "host"},
        admin=True,
    )
    assert status == 404 and answer["error"]["code"] == "not_found"


async def test_rooms_are_created_once_with_their_modules(server: Harness) -> None:
    room = await server.create_room(id="t3", title="Drop night", modules=["polls", "shop"])
    assert room == {
        **room,
        "id": "t3",
        "title": "Drop night",
        "modules": ["polls", "shop"],
        "guests": False,
        "live": False,
    }
    status, body = await server.request(
        "POST", "/api/v1/rooms", json={"id": "t3", "title": "again"}, admin=True
    )
    assert status == 409 and body["error"]["code"] == "conflict"
    for bad in (
        {"title": ""},
        {"title": "x", "modules": ["karaoke"]},
        {"title": "x", "guests": 1},
        {"id": "has space", "title": "x"},
        {"id": "a.b", "title": "x"},
        {"title": "x" * 500},
    ):
        status, body = await server.request("POST", "/api/v1/rooms", json=bad, admin=True)
        assert status == 400 and body["error"]["code"] == "invalid", bad
    status, body = await server.request("POST", "/api/v1/rooms", data=b"{not json", admin=True)
    assert status == 400 and body["error"]["code"] == "invalid"
    status, listed = await server.request("GET", "/api/v1/rooms")
    assert [r["id"] for r in listed["rooms"]] == ["t3"]


async def test_room_snapshot_needs_a_token_of_that_room(server: Harness) -> None:
    await server.create_room(id="a")
    await server.create_room(id="b")
    ok_token = server.token("a", "u1")
    assert (await server.request("GET", "/api/v1/rooms/a", token=ok_token))[0] == 200
    for token in (server.token("b", "u1"), ok_token + "x", None, server.token("a", "u", ttl_s=-10)):
        status, body = await server.request("GET", "/api/v1/rooms/a", token=token)
        assert status == 401 and body["error"]["code"] == "unauthorized"
    forged = jwt.encode(
        {"sub": "u", "room": "a", "role": "host", "exp": 2**40},
        "a-wrong-secret-of-a-decent-length-00000",
        algorithm="HS256",
    )
    assert (await server.request("GET", "/api/v1/rooms/a", token=forged))[0] == 401


async def test_guests_get_listener_tokens_only_where_allowed(server: Harness) -> None:
    await server.create_room(id="open", guests=True)
    await server.create_room(id="closed")
    status, body = await server.request("POST", "/api/v1/rooms/open/guest", json={"name": "Zoe"})
    assert status == 201
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["role"] == "listener" and claims["name"] == "Zoe" and claims["room"] == "open"
    status, body = await server.request("POST", "/api/v1/rooms/closed/guest", json={"name": "Zoe"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await server.request("POST", "/api/v1/rooms/open/guest", json={"name": ""})
    assert status == 400
    status, body = await server.request("POST", "/api/v1/rooms/nope/guest", json={"name": "Z"})
    assert status == 404


async def test_guest_tokens_are_rate_limited_per_address(server: Harness) -> None:
    await server.create_room(id="busy", guests=True)
    statuses = [
        (await server.request("POST", "/api/v1/rooms/busy/guest", json={"name": f"g{i}"}))[0]
        for i in range(12)
    ]
    assert statuses[:10] == [201] * 10
    assert statuses[10:] == [429, 429]


async def test_host_changes_modules_and_listeners_cannot(server: Harness) -> None:
    await server.create_room(id="m1")
    listener = server.token("m1", "l", "listener")
    status, body = await server.request(
        "PATCH", "/api/v1/rooms/m1", json={"modules": []}, token=listener
    )
    assert status == 403
    host = server.token("m1", "h", "host")
    status, body = await server.request(
        "PATCH", "/api/v1/rooms/m1", json={"modules": ["chat"], "live": True}, token=host
    )
    assert status == 200 and body["modules"] == ["chat"] and body["live"] is True


async def test_unknown_paths_answer_json_errors(server: Harness) -> None:
    status, body = await server.request("GET", "/api/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not_found"


async def test_metrics_are_exposed_for_prometheus(server: Harness) -> None:
    await server.create_room(id="m2")
    client = await server.connect("m2", "x")
    await client.call("chat:send", {"text": "hi"})
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        text = await resp.text()
    assert resp.status == 200
    assert 'droproom_events_total{event="chat:send",outcome="ok"} 1.0' in text
