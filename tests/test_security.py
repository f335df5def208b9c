"""Hostile input at the HTTP edge: the admin key only in its header,
guessing it throttled per address."""

import aiohttp

from tests.harness import ADMIN_KEY, Harness


async def _post_room(
    server: Harness, headers: dict[str, str], query: str = "", local: str = "127.0.0.1"
) -> tuple[int, dict]:
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(
            f"{server.url}/api/v1/rooms{query}", json={"title": "A room"}, headers=headers
        ) as resp,
    ):
        return resp.status, await resp.json()


def _key(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_the_admin_key_is_refused_in_the_query_string(server: Harness) -> None:
    status, body = await _post_room(server, {}, f"?token={ADMIN_KEY}")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert "Authorization" in body["error"]["message"]
    assert (await _post_room(server, _key(ADMIN_KEY)))[0] == 201


async def test_guessing_the_admin_key_is_throttled_per_address(server: Harness) -> None:
    for _ in range(5):
        assert (await _post_room(server, _key("guess")))[0] == 401
    # Now even the right key is refused from this address: a guess learns nothing.
    status, body = await _post_room(server, _key(ADMIN_KEY))
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert (await _post_room(server, _key("guess")))[0] == 429
    # Another address is not affected.
    assert (await _post_room(server, _key(ADMIN_KEY), local="127.0.0.2"))[0] == 201
    rooms = await server.request("GET", "/api/v1/rooms")
    assert len(rooms[1]["rooms"]) == 1


async def test_a_hosts_room_token_is_not_counted_as_an_admin_guess(server: Harness) -> None:
    await server.create_room(id="h1", title="Hosted")
    host = server.token("h1", "host", "host")
    for _ in range(7):
        status, _ = await server.request(
            "PATCH", "/api/v1/rooms/h1", json={"title": "Renamed"}, token=host
        )
        assert status == 200
    assert (await _post_room(server, _key(ADMIN_KEY)))[0] == 201
