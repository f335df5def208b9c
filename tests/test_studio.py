"""The creator studio's backend: creators edit and list only what they own
(two creators and the admin side by side), taken ids answer 409, the owner
joins their room as host, a room shows only its owner's products, and
invite links are minted, listed and revoked (their sockets closed), and
product images are re-encoded without their metadata, bounded before any
pixel is decoded."""

import asyncio
import hashlib
import io
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio
from PIL import ExifTags, Image, ImageFile

from rooms.invites import Invites
from server.appkeys import ROOMS
from server.config import Settings
from tests.harness import SECRET, Client, Harness, connect, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer
from tests.studio_helpers import Person, buyer, creator, product_body


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


async def make_product(server: Harness, who: Person, pid: str, **extra: object) -> dict:
    status, body = await who.call(server, "POST", "/api/v1/products", product_body(pid, **extra))
    assert status == 201, body
    return body


async def make_room(server: Harness, who: Person, room: str) -> dict:
    status, body = await who.call(server, "POST", "/api/v1/rooms", {"id": room, "title": room})
    assert status == 201, body
    return body


def forbidden(status: int, body: dict) -> bool:
    return status == 403 and body["error"]["code"] == "forbidden" and body["error"]["message"]


# --- 1. isolation and editing ------------------------------------------------


async def test_a_creator_edits_their_product_and_no_one_elses(
    server: Harness, smtp: SmtpServer, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "ann-tee")
    change = {
        "title": "Tour tee",
        "description": "Black, heavy cotton",
        "price": 2500,
        "currency": "usd",
        "tags": ["merch", "tour"],
        "image_url": "https://cdn.example.com/tee.webp",
    }
    status, body = await ann.call(server, "PATCH", "/api/v1/products/ann-tee", change)
    assert status == 200, body
    assert {k: body[k] for k in change} == change
    assert body["owner"] == ann.id and body["kind"] == "physical" and body["remaining"] == 10
    status, public = await server.request("GET", "/api/v1/products/ann-tee")
    assert public["title"] == "Tour tee" and public["price"] == 2500
    assert forbidden(*await bob.call(server, "PATCH", "/api/v1/products/ann-tee", {"price": 1}))
    someone = await buyer(server, smtp, "fan@example.com")
    status, body = await someone.call(server, "PATCH", "/api/v1/products/ann-tee", {"price": 1})
    assert forbidden(status, body) and "creator" in body["error"]["message"]
    status, _ = await server.request("PATCH", "/api/v1/products/ann-tee", {"price": 1})
    assert status == 401
    status, body = await server.request(
        "PATCH", "/api/v1/products/ann-tee", {"price": 2600}, admin=True
    )
    assert status == 200 and body["price"] == 2600
    _, public = await server.request("GET", "/api/v1/products/ann-tee")
    assert public["price"] == 2600 and public["currency"] == "usd"


async def test_bad_product_edits_are_refused_and_change_nothing(
    server: Harness, ann: Person
) -> None:
    await make_product(server, ann, "ann-mug")
    for bad in (
        {},
        {"price": 0},
        {"price": "12"},
        {"currency": "euro"},
        {"kind": "digital"},
        {"owner": "admin"},
        {"id": "other"},
        {"tags": "a," * 20},
        {"image_url": "javascript:alert(1)"},
        {"title": " "},
        {"stock": -1},
    ):
        status, body = await ann.call(server, "PATCH", "/api/v1/products/ann-mug", bad)
        assert status == 400 and body["error"]["code"] == "invalid", (bad, body)
    _, public = await server.request("GET", "/api/v1/products/ann-mug")
    assert public == {**public, "price": 1500, "currency": "eur", "kind": "physical", "stock": 10}
    status, body = await ann.call(server, "PATCH", "/api/v1/products/nope", {"price": 5})
    assert status == 404


async def test_stock_edits_never_go_below_units_held_and_sold(server: Harness, ann: Person) -> None:
    await make_product(server, ann, "ann-cap", stock=5)
    await make_room(server, ann, "ann-live")
    host = await server.connect("ann-live", "host", "host")
    assert (await host.call("slot:pin", {"slot": 1, "product_id": "ann-cap"}))["ok"]
    fan = await server.connect("ann-live", "fan")
    assert (await fan.call("cart:add", {"product_id": "ann-cap", "qty": 2}))["ok"]
    path = "/api/v1/products/ann-cap"
    status, body = await ann.call(server, "PATCH", path, {"stock": 1})
    assert status == 409 and "2 units held or sold" in body["error"]["message"]
    status, body = await ann.call(server, "PATCH", path, {"stock": 2})
    assert status == 200 and (body["stock"], body["remaining"]) == (2, 0)
    refused = await fan.call("cart:add", {"product_id": "ann-cap", "qty": 1})
    assert refused["error"]["code"] == "sold_out"
    status, body = await ann.call(server, "PATCH", path, {"stock": 9})
    assert status == 200 and (body["stock"], body["remaining"]) == (9, 7)
    status, body = await ann.call(server, "PATCH", path, {"stock": None})
    assert status == 409  # tracked stays tracked
    await make_product(server, ann, "ann-file", kind="digital", stock=None)
    status, body = await ann.call(server, "PATCH", "/api/v1/products/ann-file", {"stock": 3})
    assert status == 409 and body["error"]["code"] == "conflict"


async def test_a_price_edit_reaches_the_rooms_showing_the_product(
    server: Harness, ann: Person
) -> None:
    await make_product(server, ann, "ann-pin")
    await make_room(server, ann, "ann-shop")
    host = await server.connect("ann-shop", "host", "host")
    assert (await host.call("slot:pin", {"slot": 1, "product_id": "ann-pin"}))["ok"]
    fan = await server.connect("ann-shop", "fan")
    status, _ = await ann.call(server, "PATCH", "/api/v1/products/ann-pin", {"price": 900})
    assert status == 200
    update = await fan.wait_for("product:updated", lambda d: d["product"]["price"] == 900)
    assert update["product"]["id"] == "ann-pin"
    answer = await fan.call("cart:add", {"product_id": "ann-pin", "qty": 1})
    assert answer["ok"] and answer["cart"]["total"] == 900


async def test_each_creator_lists_only_their_own(
    server: Harness, smtp: SmtpServer, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "ann-1")
    await make_product(server, ann, "ann-2")
    await make_product(server, bob, "bob-1")
    await server.admin_post("/api/v1/products", product_body("house-1"))
    await make_room(server, ann, "ann-room")
    await make_room(server, bob, "bob-room")
    await server.create_room(id="house-room")

    async def listed(who: Person | None, path: str, key: str) -> list[str]:
        token = who.token if who else None
        status, body = await server.request("GET", path, token=token, admin=not who)
        assert status == 200, body
        return [item["id"] for item in body[key]]

    assert await listed(ann, "/api/v1/products?owner=me", "products") == ["ann-1", "ann-2"]
    assert await listed(bob, "/api/v1/products", "products") == ["bob-1"]
    assert await listed(ann, "/api/v1/rooms?owner=me", "rooms") == ["ann-room"]
    assert await listed(bob, "/api/v1/rooms?owner=me", "rooms") == ["bob-room"]
    every = await listed(None, "/api/v1/products?owner=me", "products")
    assert every == ["ann-1", "ann-2", "bob-1", "house-1"]
    assert await listed(None, f"/api/v1/rooms?owner={bob.id}", "rooms") == ["bob-room"]
    assert await listed(None, f"/api/v1/products?owner={ann.id}", "products") == [
        "ann-1",
        "ann-2",
    ]
    assert forbidden(*await ann.call(server, "GET", f"/api/v1/products?owner={bob.id}"))
    assert forbidden(*await ann.call(server, "GET", f"/api/v1/rooms?owner={bob.id}"))
    someone = await buyer(server, smtp, "fan@example.com")
    assert forbidden(*await someone.call(server, "GET", "/api/v1/rooms?owner=me"))
    status, _ = await server.request("GET", "/api/v1/products?owner=me")
    assert status == 401
    status, lobby = await server.request("GET", "/api/v1/rooms")  # the lobby stays public
    assert status == 200 and len(lobby["rooms"]) == 3


async def test_taken_ids_answer_409_and_are_never_overwritten(
    server: Harness, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "taken", title="Ann's")
    await make_room(server, ann, "taken-room")
    await server.admin_post("/api/v1/products", product_body("house"))
    await server.create_room(id="house-room", title="House")
    attempts = [
        (bob, "/api/v1/products", product_body("taken", title="Bob's")),
        (None, "/api/v1/products", product_body("taken", title="Admin's")),
        (ann, "/api/v1/products", product_body("taken", title="Ann again")),
        (ann, "/api/v1/products", product_body("house", title="Ann's house")),
        (bob, "/api/v1/rooms", {"id": "taken-room", "title": "Bob's"}),
        (None, "/api/v1/rooms", {"id": "taken-room", "title": "Admin's"}),
        (bob, "/api/v1/rooms", {"id": "house-room", "title": "Bob's house"}),
    ]
    for who, path, body in attempts:
        status, answer = await server.request(
            "POST", path, body, token=who.token if who else None, admin=who is None
        )
        assert status == 409 and answer["error"]["code"] == "conflict", (path, body)
    _, product = await server.request("GET", "/api/v1/products/taken")
    assert (product["title"], product["owner"]) == ("Ann's", ann.id)
    _, house = await server.request("GET", "/api/v1/products/house")
    assert house["owner"] == "admin"
    _, rooms = await ann.call(server, "GET", "/api/v1/rooms?owner=me")
    assert [(r["id"], r["title"]) for r in rooms["rooms"]] == [("taken-room", "taken-room")]
    _, bobs = await bob.call(server, "GET", "/api/v1/rooms?owner=me")
    assert bobs["rooms"] == []


async def test_the_owner_edits_their_room_and_another_creator_cannot(
    server: Harness, ann: Person, bob: Person
) -> None:
    await make_room(server, ann, "ann-stage")
    watcher = await server.connect("ann-stage", "fan")
    status, body = await ann.call(
        server, "PATCH", "/api/v1/rooms/ann-stage", {"title": "Friday set", "guests": True}
    )
    assert status == 200 and body["title"] == "Friday set" and body["guests"] is True
    await watcher.wait_for("room:updated", lambda d: d["room"]["title"] == "Friday set")
    assert forbidden(*await bob.call(server, "PATCH", "/api/v1/rooms/ann-stage", {"title": "x"}))
    host = server.token("ann-stage", "cohost", "host")
    status, body = await server.request(
        "PATCH", "/api/v1/rooms/ann-stage", {"title": "By the host"}, token=host
    )
    assert status == 200
    moderator = server.token("ann-stage", "mod", "moderator")
    status, _ = await server.request(
        "PATCH", "/api/v1/rooms/ann-stage", {"title": "x"}, token=moderator
    )
    assert status == 403
    status, body = await server.request(
        "PATCH", "/api/v1/rooms/ann-stage", {"live": False}, admin=True
    )
    assert status == 200 and body["title"] == "By the host"


async def test_only_the_owner_uploads_a_products_sound(
    server: Harness, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "ann-tone", kind="digital", stock=None)
    headers = {"Content-Type": "audio/wav"}
    path = "/api/v1/products/ann-tone/audio"
    status, body = await bob.call(server, "POST", path, data=b"RIFF....", headers=headers)
    assert forbidden(status, body)
    # the owner is let through to the sound's own checks (this is no sound)
    status, body = await ann.call(server, "POST", path, data=b"RIFF....", headers=headers)
    assert status == 400 and body["error"]["code"] == "invalid"
    status, body = await bob.call(server, "POST", "/api/v1/products/nope/audio", data=b"x")
    assert status == 404


# --- 2. joining ----------------------------------------------------------------


async def test_the_rooms_owner_joins_as_host_and_others_as_listeners(
    server: Harness, smtp: SmtpServer, ann: Person, bob: Person
) -> None:
    await make_room(server, ann, "ann-join")
    status, body = await ann.call(server, "POST", "/api/v1/rooms/ann-join/join")
    assert status == 200
    host = await server_connect(server, body["token"])
    assert host.received("room:state")[0]["me"]["role"] == "host"
    status, body = await bob.call(server, "POST", "/api/v1/rooms/ann-join/join")
    other = await server_connect(server, body["token"])
    assert other.received("room:state")[0]["me"]["role"] == "listener"
    await server.create_room(id="house-join")
    status, body = await ann.call(server, "POST", "/api/v1/rooms/house-join/join")
    house = await server_connect(server, body["token"])
    assert house.received("room:state")[0]["me"]["role"] == "listener"


async def server_connect(server: Harness, token: str) -> Client:
    client = await connect(server.url, token)
    server.clients.append(client)
    await client.wait_for("room:state")
    return client


# --- 3. a room shows only its owner's products ----------------------------------


async def test_a_room_pins_and_drops_only_its_owners_products(
    server: Harness, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "ann-hoodie")
    await make_product(server, bob, "bob-hoodie")
    await server.admin_post("/api/v1/products", product_body("house-hoodie"))
    await make_room(server, ann, "ann-gig")
    host = await server.connect("ann-gig", "host", "host")
    for pid in ("bob-hoodie", "house-hoodie"):
        refused = await host.call("slot:pin", {"slot": 1, "product_id": pid})
        assert (
            refused["error"]["code"] == "forbidden"
            and "another creator" in (refused["error"]["message"])
        )
        window = {"starts_at": time.time() + 60, "ends_at": time.time() + 600, "stock": 3}
        refused = await host.call("drop:schedule", {"product_id": pid, **window})
        assert refused["error"]["code"] == "forbidden"
    assert host.received("slot:updated") == [] and host.received("drop:updated") == []
    assert (await host.call("slot:pin", {"slot": 1, "product_id": "ann-hoodie"}))["ok"]
    window = {"starts_at": time.time() + 60, "ends_at": time.time() + 600, "stock": 3}
    assert (await host.call("drop:schedule", {"product_id": "ann-hoodie", **window}))["ok"]
    # the admin's room may show anything
    await server.create_room(id="house-gig")
    house = await server.connect("house-gig", "host", "host")
    for slot, pid in enumerate(("ann-hoodie", "bob-hoodie", "house-hoodie"), start=1):
        assert (await house.call("slot:pin", {"slot": slot, "product_id": pid}))["ok"]
    assert (await house.call("drop:schedule", {"product_id": "bob-hoodie", **window}))["ok"]


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


# --- 5. product images -------------------------------------------------------------


def _photo_with_gps() -> bytes:
    """A 2400x1200 JPEG a phone took sideways (orientation 6) with its GPS."""
    image = Image.new("RGB", (2400, 1200), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 1200, 1200))  # left half blue: shows the rotation
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 29.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def _looked_at(data: bytes) -> dict[str, Any]:
    """What a reader of the file sees (Pillow off the loop: its first use
    imports every plugin)."""
    with Image.open(io.BytesIO(data)) as image:
        exif = image.getexif()
        seen: dict[str, Any] = {
            "format": image.format,
            "size": image.size,
            "exif": dict(exif),
            "gps": dict(exif.get_ifd(ExifTags.IFD.GPSInfo)),
            "info": set(image.info),
        }
        width = image.size[0]
        seen["top"] = image.convert("RGB").getpixel((width // 2, 100))
    return seen


def _huge_png() -> bytes:
    """50 megapixels in a few kilobytes: one colour, one bit per pixel."""
    out = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(out, "PNG")
    return out.getvalue()


async def _upload(
    server: Harness, who: Person | None, pid: str, body: bytes, kind: str = "image/jpeg"
) -> tuple[int, dict]:
    token = who.token if who else server.settings.admin_key
    headers = {"Content-Type": kind, "Authorization": f"Bearer {token}"}
    url = f"{server.url}/api/v1/products/{pid}/image"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_an_image_comes_back_upright_small_webp_without_its_metadata(
    server: Harness, ann: Person
) -> None:
    await make_product(server, ann, "ann-poster")
    photo = await asyncio.to_thread(_photo_with_gps)
    sent = await asyncio.to_thread(_looked_at, photo)
    assert sent["gps"]  # the upload carries GPS
    status, product = await _upload(server, ann, "ann-poster", photo)
    assert status == 200, product
    assert re.fullmatch(r"/files/images/[0-9a-f]{64}\.webp", product["image_url"])
    _, public = await server.request("GET", "/api/v1/products/ann-poster")
    assert public["image_url"] == product["image_url"]
    async with aiohttp.ClientSession() as http, http.get(server.url + product["image_url"]) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "image/webp"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "immutable" in r.headers["Cache-Control"]
        body = await r.read()
    sha = product["image_url"].split("/")[-1].removesuffix(".webp")
    assert hashlib.sha256(body).hexdigest() == sha
    kept = await asyncio.to_thread(_looked_at, body)
    assert kept["format"] == "WEBP" and kept["size"] == (600, 1200)  # upright, long side 1200
    assert (
        not kept["exif"] and not kept["gps"] and not {"exif", "icc_profile", "xmp"} & kept["info"]
    )
    assert b"Exif" not in body and b"PhoneMaker" not in body and b"XMP" not in body
    top = kept["top"]
    assert isinstance(top, tuple) and top[2] > 150 > top[0]  # the blue half is on top now
    status, again = await _upload(server, ann, "ann-poster", photo)
    assert status == 200 and again["image_url"] == product["image_url"]  # content-addressed


# Pillow's own guard warns between its limit and twice it (ours refuses first)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
async def test_a_50_megapixel_png_is_refused_without_being_decoded(
    server: Harness, ann: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_product(server, ann, "ann-huge")
    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile) -> object:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    huge = await asyncio.to_thread(_huge_png)
    assert len(huge) < 100_000
    status, body = await _upload(server, ann, "ann-huge", huge, "image/png")
    assert status == 400 and "megapixels" in body["error"]["message"], body
    assert decoded == []
    far = await asyncio.to_thread(lambda: _png((20_000, 10_000)))  # past Pillow's own guard
    status, body = await _upload(server, ann, "ann-huge", far, "image/png")
    assert status == 400 and decoded == []
    small = await asyncio.to_thread(lambda: _png((64, 64)))
    status, _ = await _upload(server, ann, "ann-huge", small, "image/png")
    assert status == 200 and set(decoded) == {(64, 64)}  # the same path decodes a fair image


def _png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("1", size).save(out, "PNG")
    return out.getvalue()


async def test_what_is_not_an_image_is_refused_and_changes_nothing(
    server: Harness, ann: Person
) -> None:
    await make_product(server, ann, "ann-bad", image_url="/static/old.png")
    broken = (await asyncio.to_thread(_photo_with_gps))[:5000]
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for body, kind in (
        (b"hello, not an image", "image/png"),
        (svg, "image/png"),
        (b"GIF89a", "image/gif"),
        (broken, "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n", "text/plain"),
        (b"", "image/png"),
    ):
        status, answer = await _upload(server, ann, "ann-bad", body, kind)
        assert status == 400 and answer["error"]["code"] == "invalid", (kind, body[:20], answer)
    status, answer = await _upload(server, ann, "ann-bad", b"\0" * (15 * 1024 * 1024 + 1))
    assert status == 413 and "15 MB" in answer["error"]["message"]
    _, public = await server.request("GET", "/api/v1/products/ann-bad")
    assert public["image_url"] == "/static/old.png"


async def test_only_the_owner_or_the_admin_sets_a_products_image(
    server: Harness, ann: Person, bob: Person
) -> None:
    await make_product(server, ann, "ann-art")
    small = await asyncio.to_thread(lambda: _png((32, 16)))
    status, body = await _upload(server, bob, "ann-art", small, "image/png")
    assert forbidden(status, body)
    _, public = await server.request("GET", "/api/v1/products/ann-art")
    assert public["image_url"] is None
    form = aiohttp.FormData()
    form.add_field("file", small, filename="art.png", content_type="image/png")
    url = f"{server.url}/api/v1/products/ann-art/image"
    headers = {"Authorization": f"Bearer {server.settings.admin_key}"}
    async with aiohttp.ClientSession() as http, http.post(url, data=form, headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["image_url"].endswith(".webp")
    status, _ = await _upload(server, ann, "nope", small, "image/png")
    assert status == 404
