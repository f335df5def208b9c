"""The drop rush: 500 buyers on their own Socket.IO connections add to a drop
of 50 with a limit of 1 each, at once. Exactly 50 win, 450 hear `sold_out`,
stock never goes below zero, and after paying exactly 50 orders are paid."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest

from server.shop.resources import SHOP
from tests.harness import Client, Harness, connect

ROOM = "rush"
SHIP = {
    "shipping": {
        "name": "A",
        "line1": "1 Main St",
        "city": "X",
        "postal_code": "1",
        "country": "US",
    }
}
BUYERS = 500
STOCK = 50


async def _connect_all(server: Harness, n: int) -> list[Client]:
    clients: list[Client] = []
    for start in range(0, n, 50):
        batch = [
            connect(server.url, server.token(ROOM, f"buyer{i}")) for i in range(start, start + 50)
        ]
        clients += await asyncio.gather(*batch)
    server.clients.extend(clients)
    return clients


@pytest.mark.slow
@pytest.mark.allow_blocking  # asyncio debug mode would slow 500 clients ten-fold
async def test_rush_of_500_on_50(server: Harness) -> None:
    await server.create_room(id=ROOM)
    await server.admin_post(
        "/api/v1/products",
        {"id": "cap", "title": "Cap", "price": 1200, "currency": "usd", "kind": "physical"},
    )
    mod = await server.connect(ROOM, "mod", "moderator")
    now = time.time()
    payload: dict[str, Any] = {"product_id": "cap", "starts_at": now, "ends_at": now + 600}
    drop = (await mod.call("drop:schedule", {**payload, "stock": STOCK, "per_buyer_limit": 1}))[
        "drop"
    ]
    buyers = await _connect_all(server, BUYERS)
    answers = await asyncio.gather(
        *(b.call("cart:add", {"drop_id": drop["id"], "qty": 1}, timeout=60) for b in buyers)
    )
    outcome = Counter("ok" if a["ok"] else a["error"]["code"] for a in answers)
    assert outcome == {"ok": STOCK, "sold_out": BUYERS - STOCK}
    shop = server.app[SHOP]
    state = await shop.drops.get(ROOM, drop["id"])
    assert (state.remaining, state.held, state.sold) == (0, STOCK, 0)
    await mod.wait_for("drop:updated", lambda d: d["drop"]["state"] == "sold_out")
    winners = [b for b, a in zip(buyers, answers, strict=True) if a["ok"]]
    again = await asyncio.gather(*(w.call("cart:add", {"drop_id": drop["id"]}) for w in winners))
    assert {a["error"]["code"] for a in again} <= {"limit_reached", "sold_out"}
    paid = await asyncio.gather(
        *(
            w.call("checkout:start", {**SHIP, "payment_method": "pm_card_visa"}, timeout=60)
            for w in winners
        )
    )
    assert [p["status"] for p in paid] == ["succeeded"] * STOCK
    await asyncio.gather(
        *(
            w.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 30)
            for w in winners
        )
    )
    state = await shop.drops.get(ROOM, drop["id"])
    assert (state.remaining, state.held, state.sold) == (0, 0, STOCK)
