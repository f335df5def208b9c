"""The money path end to end: real server, real Socket.IO clients, real Redis
and the embedded localstripe through the official SDK, webhooks signed and
delivered by localstripe itself."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import stripe

from server.appkeys import EMITTER
from server.config import Settings
from server.embedded.stripe_embed import EmbeddedStripe
from server.shop.resources import SHOP, STRIPE_EMBED
from tests.harness import Client, Harness, free_port
from tests.harness import test_settings as make_settings

ROOM = "shoproom"
# Physical items ship: checkout:start carries an address (PROTOCOL "Shop, v2").
SHIP: dict[str, Any] = {
    "shipping": {
        "name": "Ada Buyer",
        "line1": "1 Rue de la Paix",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
    }
}


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Settings:
    """The shared settings, with overrides given by indirect parametrisation."""
    return make_settings(tmp_path / "data", redis_url, **getattr(request, "param", {}))


def _embed(server: Harness) -> EmbeddedStripe:
    embedded = server.app[STRIPE_EMBED]
    assert embedded is not None
    return embedded


async def _setup(server: Harness, stock: int = 5, limit: int | None = 2) -> tuple[Client, str]:
    await server.create_room(id=ROOM)
    await server.admin_post(
        "/api/v1/products",
        {"id": "tee", "title": "Tee", "price": 2500, "currency": "EUR", "kind": "physical"},
    )
    mod = await server.connect(ROOM, "mod", "moderator")
    now = time.time()
    payload: dict[str, Any] = {"product_id": "tee", "starts_at": now, "ends_at": now + 600}
    payload.update({"stock": stock, "per_buyer_limit": limit})
    answer = await mod.call("drop:schedule", payload)
    assert answer["ok"], answer
    assert answer["drop"]["state"] == "live"
    return mod, answer["drop"]["id"]


async def _card(server: Harness, number: str) -> str:
    """Tokenise a card with the publishable key, as Stripe.js's createToken does."""
    keys = _embed(server).keys
    data = {"key": keys.publishable_key, "card[number]": number, "card[exp_month]": "12"}
    data.update({"card[exp_year]": "2034", "card[cvc]": "123"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(keys.api_base + "/v1/tokens", data=data) as resp,
    ):
        body = await resp.json()
    return str(body["card"]["id"])


async def _drop(server: Harness, drop_id: str) -> Any:
    return await server.app[SHOP].drops.get(ROOM, drop_id)


async def test_full_purchase(server: Harness) -> None:
    mod, drop_id = await _setup(server)
    pinned = await mod.call("slot:pin", {"slot": 1, "product_id": "tee", "note": "signed"})
    assert pinned["ok"] and pinned["slot"]["product"]["price"] == 2500
    buyer = await server.connect(ROOM, "alice")
    other_tab = await server.connect(ROOM, "alice")
    bystander = await server.connect(ROOM, "zed")
    state = buyer.received("room:state")[0]
    assert state["slots"][0]["product"]["id"] == "tee"
    assert state["drops"][0]["remaining"] == 5
    added = await buyer.call("cart:add", {"drop_id": drop_id, "qty": 2})
    assert added["ok"], added
    assert added["cart"]["total"] == 5000
    synced = await other_tab.wait_for("cart:updated", lambda d: d["cart"]["total"] == 5000)
    assert synced["cart"]["lines"][0]["qty"] == 2
    assert not bystander.received("cart:updated")
    await mod.wait_for("drop:updated", lambda d: d["drop"]["remaining"] == 3)
    card = await _card(server, "4242424242424242")
    answer = await buyer.call("checkout:start", {**SHIP, "payment_method": card})
    assert answer["ok"], answer
    assert answer["status"] == "succeeded"
    assert answer["amount"] == 5000 and answer["currency"] == "eur"
    assert answer["client_secret"] and answer["publishable_key"].startswith("pk_")
    paid = await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    receipt = paid["order"]["receipt"]
    assert receipt["total"] == 5000 and receipt["payment_ref"] == answer["payment_ref"]
    assert receipt["lines"][0]["qty"] == 2
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (3, 0, 2)
    assert not mod.received("order:updated")  # only the buyer hears of it
    # The staff's order feed shows the paid order and who bought; listeners never see it.
    feed = await mod.wait_for("order:feed", lambda d: d["order"]["status"] == "paid")
    assert feed["order"]["buyer"] == "alice" and feed["order"]["total"] == 5000
    assert feed["order"]["id"] == paid["order"]["id"]
    assert not bystander.received("order:feed") and not buyer.received("order:feed")
    # Coming back later (another tab, a reconnect), the buyer finds the order and receipt.
    again = await server.connect(ROOM, "alice")
    (latest,) = again.received("room:state")[0]["orders"]
    assert latest["id"] == paid["order"]["id"] and latest["status"] == "paid"
    assert latest["receipt"]["total"] == 5000
    assert bystander.received("room:state")[0]["orders"] == []


async def test_declined_card_keeps_the_order_open(server: Harness) -> None:
    """PROTOCOL: a decline leaves the order open for another card until its
    hold ends (tests/test_shop_money_v2.py covers the cap and the hold)."""
    _, drop_id = await _setup(server)
    buyer = await server.connect(ROOM, "bob")
    assert (await buyer.call("cart:add", {"drop_id": drop_id, "qty": 1}))["ok"]
    answer = await buyer.call(
        "checkout:start", {**SHIP, "payment_method": "pm_card_chargeCustomerFail"}
    )
    assert answer["ok"], answer
    assert answer["status"] == "requires_payment_method"
    said = await buyer.wait_for("order:updated", lambda d: d["order"].get("payment_error"), 10)
    assert said["order"]["status"] == "pending" and said["order"]["attempts_left"] == 2
    await asyncio.sleep(1.5)  # the decline's webhook lands and changes nothing
    order = await server.app[SHOP].orders.get(ROOM, answer["order_id"])
    assert order.status == "pending"
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (4, 1, 0)


async def test_three_d_secure(server: Harness) -> None:
    _, drop_id = await _setup(server)
    buyer = await server.connect(ROOM, "carol")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    card = await _card(server, "4000002500003155")
    answer = await buyer.call("checkout:start", {**SHIP, "payment_method": card})
    assert answer["status"] == "requires_action", answer
    keys = _embed(server).keys
    url = f"{keys.api_base}/v1/payment_intents/{answer['payment_ref']}/_authenticate"
    data = {"key": keys.publishable_key, "client_secret": answer["client_secret"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "?success=true", data=data) as resp:
            assert resp.status == 200
    await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)


def _signed(server: Harness, event: dict[str, Any], secret: str | None = None) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    ts = int(time.time())
    secret = secret or _embed(server).keys.webhook_secret
    sig = stripe.WebhookSignature._compute_signature(f"{ts}.{payload.decode()}", secret)
    return payload, f"t={ts},v1={sig}"


async def _post_webhook(server: Harness, payload: bytes, signature: str) -> int:
    headers = {"Stripe-Signature": signature, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.url + "/api/v1/stripe/webhook", data=payload, headers=headers) as resp,
    ):
        return resp.status


async def test_same_webhook_twice_and_forged(server: Harness) -> None:
    _, drop_id = await _setup(server)
    buyer = await server.connect(ROOM, "dave")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    answer = await buyer.call("checkout:start", SHIP)
    assert answer["status"] == "requires_payment_method"
    intent = await server.app[SHOP].gateway.retrieve(answer["payment_ref"])
    obj: dict[str, Any] = {"id": intent.id, "object": "payment_intent", "status": "succeeded"}
    obj.update({"amount": intent.amount, "currency": intent.currency, "metadata": intent.metadata})
    event = {"id": "evt_test_dup", "type": "payment_intent.succeeded", "data": {"object": obj}}
    forged = _signed(server, event, secret="whsec_forged")
    assert await _post_webhook(server, *forged) == 400
    assert await _post_webhook(server, json.dumps(event).encode(), "t=1,v1=00") == 400
    order = await server.app[SHOP].orders.get(ROOM, answer["order_id"])
    assert order.status == "pending"
    assert await _post_webhook(server, *_signed(server, event)) == 200
    assert await _post_webhook(server, *_signed(server, event)) == 200
    await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid")
    event["id"] = "evt_test_other"  # a second event about the same payment
    assert await _post_webhook(server, *_signed(server, event)) == 200
    failed = {**event, "id": "evt_test_late_fail", "type": "payment_intent.payment_failed"}
    assert await _post_webhook(server, *_signed(server, failed)) == 200
    paid = [d for d in buyer.received("order:updated") if d["order"]["status"] == "paid"]
    assert len(paid) == 1
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (4, 0, 1)


async def test_paid_after_hold_lost_is_refunded(server: Harness) -> None:
    _, drop_id = await _setup(server)
    buyer = await server.connect(ROOM, "erin")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    answer = await buyer.call("checkout:start", SHIP)
    shop = server.app[SHOP]
    later = time.time() + server.settings.checkout_hold_s + 1
    await shop.settlement.expire_holds(ROOM, later, cancel=False)
    order = await shop.orders.get(ROOM, answer["order_id"])
    assert (order.status, order.reason) == ("failed", "hold_expired")
    assert (await _drop(server, drop_id)).remaining == 5
    intent = await shop.gateway.confirm(answer["payment_ref"], "pm_card_visa")
    assert intent.status == "succeeded"
    refunded = await buyer.wait_for(
        "order:updated", lambda d: d["order"]["status"] == "refunded", 10
    )
    assert refunded["order"]["reason"] == "paid_after_hold_lost"
    assert refunded["order"]["refund"].startswith("re_")
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (5, 0, 0)


async def test_bad_input_changes_nothing(server: Harness) -> None:
    _, drop_id = await _setup(server, limit=None)
    buyer = await server.connect(ROOM, "frank")
    bad: list[tuple[str, Any, str]] = [
        ("cart:add", {"product_id": "nope"}, "not_found"),
        ("cart:add", {"drop_id": drop_id, "qty": -1}, "invalid"),
        ("cart:add", {"drop_id": drop_id, "qty": 10**9}, "invalid"),
        ("cart:add", {"drop_id": drop_id, "qty": "2"}, "invalid"),
        ("cart:add", {"drop_id": drop_id, "qty": True}, "invalid"),
        ("cart:add", {"drop_id": drop_id, "product_id": "tee"}, "invalid"),
        ("cart:add", ["x"], "invalid"),
        ("cart:remove", {"line_id": "p.tee"}, "not_found"),
        (
            "checkout:start",
            {
                **SHIP,
            },
            "invalid",
        ),
        ("checkout:start", {**SHIP, "payment_method": 5}, "invalid"),
        ("slot:pin", {"slot": 1, "product_id": "tee"}, "forbidden"),
        ("drop:restock", {"drop_id": drop_id, "add": 5}, "forbidden"),
    ]
    for event, payload, code in bad:
        answer = await buyer.call(event, payload)
        assert not answer["ok"] and answer["error"]["code"] == code, (event, payload, answer)
    assert (await _drop(server, drop_id)).remaining == 5
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    first = await buyer.call("checkout:start", SHIP)
    again = await buyer.call("checkout:start", SHIP)
    assert first["ok"] and again["ok"]
    assert (again["order_id"], again["payment_ref"]) == (first["order_id"], first["payment_ref"])
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    second = await buyer.call("checkout:start", SHIP)  # PROTOCOL v2: resumes, cart kept
    assert second["ok"] and second["order_id"] == first["order_id"]
    assert len((await buyer.call("cart:get", {}))["cart"]["lines"]) == 1
    status, body = await server.request("POST", "/api/v1/products", json={"title": "x"}, admin=True)
    assert status == 400 and body["error"]["code"] == "invalid"
    status, _ = await server.request("POST", "/api/v1/products", json={"title": "x"})
    assert status == 401
    status, body = await server.request("GET", "/api/v1/products/tee")
    assert status == 200 and body["price"] == 2500 and body["currency"] == "eur"


@pytest.mark.parametrize("settings", [{"cart_ttl_s": 1}], indirect=True)
async def test_cart_expiry_returns_stock(server: Harness) -> None:
    _, drop_id = await _setup(server)
    buyer = await server.connect(ROOM, "gina")
    watcher = await server.connect(ROOM, "hugo")
    assert (await buyer.call("cart:add", {"drop_id": drop_id, "qty": 2}))["ok"]
    expired = await buyer.wait_for("cart:updated", lambda d: d.get("reason") == "expired", 5)
    assert expired["cart"]["lines"] == []
    await watcher.wait_for("drop:updated", lambda d: d["drop"]["remaining"] == 5, 5)
    assert (await buyer.call("cart:get", {}))["cart"]["lines"] == []


async def test_a_declined_card_then_another_card_pays_the_same_order(server: Harness) -> None:
    """The decline's webhook arrives while the buyer is finishing 3-D Secure with
    another card: it must not fail the order (nor refund the payment after)."""
    _, drop_id = await _setup(server)
    buyer = await server.connect(ROOM, "dora")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    declined = await buyer.call(
        "checkout:start", {**SHIP, "payment_method": "pm_card_chargeCustomerFail"}
    )
    assert declined["status"] == "requires_payment_method", declined
    retry = await buyer.call(
        "checkout:start", {**SHIP, "payment_method": await _card(server, "4000002500003155")}
    )
    assert retry["order_id"] == declined["order_id"] and retry["status"] == "requires_action"
    await asyncio.sleep(2.0)  # localstripe delivers the decline's webhook ~1 s after it
    keys = _embed(server).keys
    url = f"{keys.api_base}/v1/payment_intents/{retry['payment_ref']}/_authenticate"
    data = {"key": keys.publishable_key, "client_secret": retry["client_secret"]}
    async with aiohttp.ClientSession() as http, http.post(url + "?success=true", data=data) as r:
        assert r.status == 200
    paid = await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    assert paid["order"]["id"] == declined["order_id"]
    statuses = [d["order"]["status"] for d in buyer.received("order:updated")]
    assert "failed" not in statuses and "refunded" not in statuses
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (4, 0, 1)


async def _lose_webhooks(server: Harness) -> None:
    """Point localstripe's webhook at a closed port: every delivery is lost."""
    await _embed(server).register_webhook(f"http://127.0.0.1:{free_port()}/nowhere")


async def test_a_payment_whose_webhook_was_lost_is_paid_when_its_hold_ends(
    server: Harness,
) -> None:
    _, drop_id = await _setup(server)
    await _lose_webhooks(server)
    buyer = await server.connect(ROOM, "gina")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    answer = await buyer.call("checkout:start", {**SHIP, "payment_method": "pm_card_visa"})
    assert answer["status"] == "succeeded"
    shop = server.app[SHOP]
    later = time.time() + server.settings.checkout_hold_s + 1
    await server.app[EMITTER].emit(await shop.settlement.expire_holds(ROOM, later))
    paid = await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    assert paid["order"]["id"] == answer["order_id"]
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (4, 0, 1)


async def test_a_success_after_a_failed_hold_with_no_webhook_is_refunded(
    server: Harness,
) -> None:
    """The hold ended while the payment was still processing (its intent could
    not be cancelled); it succeeds later and its webhook is lost: the
    reconciler finds it and refunds it."""
    _, drop_id = await _setup(server)
    await _lose_webhooks(server)
    buyer = await server.connect(ROOM, "hank")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    answer = await buyer.call("checkout:start", SHIP)
    shop = server.app[SHOP]
    later = time.time() + server.settings.checkout_hold_s + 1
    await shop.settlement.expire_holds(ROOM, later, cancel=False)
    order = await shop.orders.get(ROOM, answer["order_id"])
    await shop.orders.watch(order, later)  # as when Stripe refused the cancel
    assert (await shop.gateway.confirm(answer["payment_ref"], "pm_card_visa")).status == (
        "succeeded"
    )
    await server.app[EMITTER].emit(await shop.reconciler.run(later + 1))
    refunded = await buyer.wait_for(
        "order:updated", lambda d: d["order"]["status"] == "refunded", 10
    )
    assert refunded["order"]["reason"] == "paid_after_hold_lost"
    drop = await _drop(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (5, 0, 0)


async def test_a_failed_order_gives_a_pinned_products_stock_back_to_the_room(
    server: Harness,
) -> None:
    await server.create_room(id=ROOM)
    await server.admin_post(
        "/api/v1/products",
        {
            "id": "zine",
            "title": "Zine",
            "price": 800,
            "currency": "usd",
            "kind": "physical",
            "stock": 1,
        },
    )
    mod = await server.connect(ROOM, "mod", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "zine"}))["ok"]
    buyer = await server.connect(ROOM, "ivy")
    assert (await buyer.call("cart:add", {"product_id": "zine"}))["ok"]
    await mod.wait_for("slot:updated", lambda d: d["slot"]["remaining"] == 0)
    answer = await buyer.call(
        "checkout:start", {**SHIP, "payment_method": "pm_card_chargeCustomerFail"}
    )
    assert answer["status"] == "requires_payment_method"
    back = await mod.wait_for("slot:updated", lambda d: d["slot"]["remaining"] == 1, 10)
    assert back["slot"]["product"]["id"] == "zine"
