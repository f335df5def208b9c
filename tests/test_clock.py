"""The server's one clock: routes and Socket.IO handlers take `now` from
`app[SCHEDULER].clock()`, so whoever sets that clock (a test, here) decides
what time the server acts at."""

from server.appkeys import SCHEDULER
from tests.harness import Harness

EPOCH = 1_700_000_000.0


async def test_rooms_and_tokens_are_dated_by_the_server_clock(server: Harness) -> None:
    server.app[SCHEDULER].clock = lambda: EPOCH
    room = await server.create_room(id="clock1")
    assert room["created_at"] == EPOCH
    status, body = await server.request(
        "POST",
        "/api/v1/tokens",
        admin=True,
        json={"room": "clock1", "identity": "ann", "role": "listener", "ttl_s": 60},
    )
    assert status == 200 and body["expires_at"] == int(EPOCH) + 60


async def test_an_event_is_refused_once_the_server_clock_passes_the_token(
    server: Harness,
) -> None:
    await server.create_room(id="clock2")
    listener = await server.connect("clock2", "bob", ttl_s=600)
    assert (await listener.call("hand:raise", {}))["ok"]
    real = server.app[SCHEDULER].clock
    server.app[SCHEDULER].clock = lambda: real() + 3600
    answer = await listener.call("hand:lower", {})
    assert answer["ok"] is False and answer["error"]["code"] == "unauthorized"
