"""The coalesced stock broadcast sends a drop's state once: a listener hears
a drop sell out once, not again from the next flush with the same stock."""

from __future__ import annotations

import asyncio
import time

from server.shop.broadcast import FLUSH_S
from tests.harness import Harness

ROOM = "flushroom"


async def test_a_listener_hears_a_drop_sell_out_once(server: Harness) -> None:
    await server.create_room(id=ROOM)
    await server.admin_post(
        "/api/v1/products",
        {"id": "cap", "title": "Cap", "price": 1200, "currency": "usd", "kind": "physical"},
    )
    host = await server.connect(ROOM, "host", "host")
    now = time.time()
    scheduled = await host.call(
        "drop:schedule",
        {"product_id": "cap", "starts_at": now, "ends_at": now + 600, "stock": 1},
    )
    drop_id = scheduled["drop"]["id"]
    fan = await server.connect(ROOM, "fan")
    buyer = await server.connect(ROOM, "buyer")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    await fan.wait_for("drop:updated", lambda d: d["drop"]["state"] == "sold_out")
    await asyncio.sleep(4 * FLUSH_S)  # the flushes that follow have nothing new
    heard = [d["drop"] for d in fan.received("drop:updated") if d["drop"]["id"] == drop_id]
    assert [(d["state"], d["remaining"], d["held"]) for d in heard] == [("sold_out", 0, 1)]

    # Stock that moves is still announced: the unit comes back.
    line = (await buyer.call("cart:get"))["cart"]["lines"][0]["line_id"]
    assert (await buyer.call("cart:remove", {"line_id": line}))["ok"]
    back = await fan.wait_for("drop:updated", lambda d: d["drop"]["remaining"] == 1)
    assert back["drop"]["state"] == "live" and back["drop"]["held"] == 0
