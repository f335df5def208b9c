"""Timed drops over Socket.IO: every state change is broadcast when it
happens, with the server's clock, and the schedule resumes after a restart."""

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness import Harness, start_server, stop_server
from tests.harness import test_settings as make_settings

ROOM = "droproom"


async def _room_with_product(server: Harness) -> None:
    await server.create_room(id=ROOM)
    await server.admin_post(
        "/api/v1/products",
        {
            "id": "pack",
            "title": "Ringtone pack",
            "price": 299,
            "currency": "usd",
            "kind": "digital",
        },
    )


def _state_is(drop_id: str, state: str) -> Callable[[dict], bool]:
    return lambda d: d["drop"]["id"] == drop_id and d["drop"]["state"] == state


async def test_drop_states_are_broadcast_as_they_happen(server: Harness) -> None:
    await _room_with_product(server)
    host = await server.connect(ROOM, "host", "host")
    fan = await server.connect(ROOM, "fan")
    start = time.time() + 1.0
    scheduled = await host.call(
        "drop:schedule",
        {
            "product_id": "pack",
            "starts_at": start,
            "ends_at": start + 2.5,
            "stock": 1,
            "per_buyer_limit": 1,
        },
    )
    drop = scheduled["drop"]
    assert drop["state"] == "scheduled" and drop["remaining"] == 1
    assert (await fan.call("cart:add", {"drop_id": drop["id"]}))["error"]["code"] == "conflict"

    live = await fan.wait_for("drop:updated", _state_is(drop["id"], "live"), timeout=5)
    assert live["drop"]["server_time"] >= start  # announced when it happened, on our clock
    assert live["drop"]["server_time"] - start < 1.0
    assert (await fan.call("cart:add", {"drop_id": drop["id"]}))["ok"]
    sold_out = await host.wait_for("drop:updated", _state_is(drop["id"], "sold_out"))
    assert sold_out["drop"]["remaining"] == 0

    restocked = await host.call("drop:restock", {"drop_id": drop["id"], "add": 2})
    assert restocked["drop"]["state"] == "live" and restocked["drop"]["remaining"] == 2
    await fan.wait_for("drop:updated", lambda d: d["drop"]["remaining"] == 2)

    ended = await fan.wait_for("drop:updated", _state_is(drop["id"], "ended"), timeout=5)
    assert ended["drop"]["server_time"] >= start + 2.5
    late = await server.connect(ROOM, "late")
    assert (await late.call("cart:add", {"drop_id": drop["id"]}))["error"]["code"] == "conflict"


async def test_the_drop_schedule_resumes_after_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None)  # embedded Redis: state on disk
    first = await start_server(settings)
    await _room_with_product(first)
    host = await first.connect(ROOM, "host", "host")
    start = time.time() + 3.0
    drop = (
        await host.call(
            "drop:schedule",
            {"product_id": "pack", "starts_at": start, "ends_at": start + 60, "stock": 5},
        )
    )["drop"]
    await stop_server(first)  # down when the drop is due to open

    second = await start_server(settings)
    try:
        fan = await second.connect(ROOM, "fan")
        state = fan.received("room:state")[0]
        assert [d["id"] for d in state["drops"]] == [drop["id"]]
        if state["drops"][0]["state"] != "live":
            await fan.wait_for("drop:updated", _state_is(drop["id"], "live"), timeout=8)
        assert (await fan.call("cart:add", {"drop_id": drop["id"], "qty": 2}))["ok"]
    finally:
        await stop_server(second)


@pytest.mark.parametrize(
    "bad",
    [
        {"product_id": "pack", "starts_at": 10, "ends_at": 5, "stock": 1},
        {"product_id": "pack", "starts_at": "soon", "ends_at": 5, "stock": 1},
        {"product_id": "pack", "starts_at": 0, "ends_at": 2e9, "stock": -1},
        {"product_id": "nope", "starts_at": 0, "ends_at": 2e9, "stock": 1},
    ],
)
async def test_bad_drop_schedules_are_refused(server: Harness, bad: dict) -> None:
    await _room_with_product(server)
    mod = await server.connect(ROOM, "mod", "moderator")
    answer = await mod.call("drop:schedule", bad)
    assert answer["ok"] is False and answer["error"]["code"] in ("invalid", "not_found")
    assert (await server.connect(ROOM, "x")).received("room:state")[0]["drops"] == []
