"""The creator studio's backend: creators edit and list only what they own
(two creators and the admin side by side), taken ids answer 409, the owner
joins their room as host, and a room shows only its owner's products.
Invite links: tests/test_studio_invites.py; images: tests/test_studio_images.py."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.config import Settings
from tests.harness import Harness
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer
from tests.studio_helpers import (
    Person,
    buyer,
    creator,
    forbidden,
    make_product,
    make_room,
    product_body,
    server_connect,
)


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


async def test_concurrent_edits_of_different_fields_all_land(server: Harness, ann: Person) -> None:
    await make_product(server, ann, "ann-busy")
    path = "/api/v1/products/ann-busy"
    for n in range(3):
        changes = [
            {"title": f"Title {n}"},
            {"price": 1000 + n},
            {"description": f"Take {n}"},
            {"tags": [f"tag{n}"]},
        ]
        answers = await asyncio.gather(*(ann.call(server, "PATCH", path, c) for c in changes))
        assert [status for status, _ in answers] == [200] * 4
        _, product = await server.request("GET", path)
        seen = (product["title"], product["price"], product["description"], product["tags"])
        assert seen == (f"Title {n}", 1000 + n, f"Take {n}", [f"tag{n}"])


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
