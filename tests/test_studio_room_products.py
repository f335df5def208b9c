"""The host console's product list (`GET /api/v1/rooms/{room}/products`):
the room owner's products for its staff (an invited moderator picks from
them without typing ids), never another creator's, never for listeners."""

import time

from server import tokens
from server.appkeys import ACCOUNTS
from tests.harness import Harness


async def _creator(server: Harness, email: str, name: str) -> str:
    """An invited creator's account token (minted as sign-in would)."""
    body = await server.admin_post("/api/v1/creators", {"email": email, "name": name})
    account_id = body["account"]["id"]
    gen = await server.app[ACCOUNTS].gen_of(account_id)
    assert gen is not None
    return tokens.mint_account(
        server.settings.secret, account_id=account_id, name=name, gen=gen, now=time.time()
    )


def _product(pid: str) -> dict[str, object]:
    return {"id": pid, "title": pid.title(), "price": 250, "currency": "eur", "kind": "digital"}


async def _list(server: Harness, room: str, token: str) -> tuple[int, object]:
    return await server.request("GET", f"/api/v1/rooms/{room}/products", token=token)


async def test_the_staff_of_a_room_list_its_owners_products_and_nobody_elses(
    server: Harness,
) -> None:
    ines = await _creator(server, "ines@example.com", "Ines")
    omar = await _creator(server, "omar@example.com", "Omar")
    status, _ = await server.request("POST", "/api/v1/rooms", {"id": "ra", "title": "A"}, ines)
    assert status == 201
    for pid in ("chime", "horn"):
        status, body = await server.request("POST", "/api/v1/products", _product(pid), ines)
        assert status == 201, body
    status, _ = await server.request("POST", "/api/v1/products", _product("theirs"), omar)
    assert status == 201

    moderator = server.token("ra", "mo", "moderator")
    status, body = await _list(server, "ra", moderator)
    assert status == 200, body
    assert isinstance(body, dict)
    assert sorted(p["id"] for p in body["products"]) == ["chime", "horn"]
    assert {p["price"] for p in body["products"]} == {250}
    status, body = await _list(server, "ra", ines)
    assert status == 200 and len(body["products"]) == 2  # type: ignore[index]

    # A listener, another creator, another room's moderator: refused.
    status, body = await _list(server, "ra", server.token("ra", "lee", "listener"))
    assert status == 403, body
    status, body = await _list(server, "ra", omar)
    assert status == 403, body
    await server.create_room(id="rb", title="B")
    status, body = await _list(server, "ra", server.token("rb", "mo", "moderator"))
    assert status == 401, body
    status, body = await _list(server, "nowhere", ines)
    assert status == 404, body


async def test_the_staff_of_an_admin_room_may_pick_any_product(server: Harness) -> None:
    """The admin may pin anything in the admin's rooms (wave 1 rooms too)."""
    ines = await _creator(server, "ines@example.com", "Ines")
    await server.create_room(id="old", title="Wave one")
    await server.admin_post("/api/v1/products", _product("tee"))
    status, _ = await server.request("POST", "/api/v1/products", _product("chime"), ines)
    assert status == 201
    status, body = await _list(server, "old", server.token("old", "mo", "moderator"))
    assert status == 200, body
    assert sorted(p["id"] for p in body["products"]) == ["chime", "tee"]  # type: ignore[index]
