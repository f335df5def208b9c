"""Buyers at the shop (issue 11, PROTOCOL "Shop, v2" and "Buyers and
creators"): email and shipping at checkout, saved cards and `buy:now`
(3-D Secure included), drops that require an account, per-account limits,
claims of a guest's orders, `/me/orders`, and resuming after a reconnect.
Real server, real Redis, real Socket.IO clients, localstripe through the
official SDK with webhooks it signs and delivers itself."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import stripe

from accounts.model import Account
from commerce import keys
from commerce.carts import AddRequest
from kernel.errors import Unauthorized
from server import tokens
from server.appkeys import ACCOUNTS
from server.roles import Role
from server.shop.resources import SHOP
from tests.harness import Client, Harness, connect
from tests.test_shop_purchase import _card, _drop, _embed, settings  # noqa: F401

ROOM = "buyers"
ADDRESS = {
    "name": "Ada Buyer",
    "line1": "1 Rue de la Paix",
    "line2": "3e étage",
    "city": "Paris",
    "postal_code": "75002",
    "country": "fr",
}
THREE_D_SECURE = "4000002500003155"


# ---- helpers -----------------------------------------------------------------


async def _shop(server: Harness, *, limit: int | None = 2, **drop: Any) -> tuple[Client, str]:
    """A room selling a physical tee (as a drop) and a digital zine (pinned)."""
    await server.create_room(id=ROOM, guests=True)
    for product in (
        {"id": "tee", "title": "Tee", "price": 2500, "currency": "eur", "kind": "physical"},
        {"id": "zine", "title": "Zine", "price": 700, "currency": "eur", "kind": "digital"},
    ):
        await server.admin_post("/api/v1/products", product)
    mod = await server.connect(ROOM, "mod", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "zine"}))["ok"]
    now = time.time()
    payload: dict[str, Any] = {"product_id": "tee", "starts_at": now, "ends_at": now + 600}
    payload.update({"stock": 5, "per_buyer_limit": limit, **drop})
    answer = await mod.call("drop:schedule", payload)
    assert answer["ok"], answer
    return mod, answer["drop"]["id"]


async def _join(server: Harness, token: str) -> Client:
    client = await connect(server.url, token)
    server.clients.append(client)
    await client.wait_for("room:state")
    return client


async def _acct(server: Harness, name: str) -> Account:
    """A signed-in buyer's account (as the sign-in link makes it)."""
    return await server.app[ACCOUNTS].get_or_create(f"{name}@example.com", time.time())


def _room_token(server: Harness, account: Account, room: str = ROOM) -> str:
    """The room token `/join` hands the account (identity: the account id)."""
    return tokens.mint(
        server.settings.secret,
        room=room,
        identity=account.id,
        role=Role.LISTENER,
        name=account.name,
        ttl_s=3600,
        now=time.time(),
        gen=account.gen,
    )


def _account_token(server: Harness, account: Account) -> str:
    return tokens.mint_account(
        server.settings.secret,
        account_id=account.id,
        name=account.name,
        gen=account.gen,
        now=time.time(),
    )


async def _guest(server: Harness) -> tuple[str, str]:
    status, body = await server.request(
        "POST", f"/api/v1/rooms/{ROOM}/guest", json={"name": "Guest"}
    )
    assert status == 201, body
    return body["token"], body["identity"]


@contextlib.asynccontextmanager
async def _sdk(server: Harness) -> AsyncIterator[stripe.StripeClient]:
    k = _embed(server).keys
    http = stripe.AIOHTTPClient()
    try:
        yield stripe.StripeClient(
            k.secret_key, base_addresses={"api": k.api_base}, http_client=http
        )
    finally:
        await http.close_async()


async def _payment_method(server: Harness, number: str) -> str:
    """A PaymentMethod made from a card number, as Stripe.js's createPaymentMethod does."""
    async with _sdk(server) as sdk:
        card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        pm = await sdk.v1.payment_methods.create_async(params={"type": "card", "card": card})  # type: ignore[arg-type]
    return str(pm.id)


async def _intent(server: Harness, intent_id: str) -> dict[str, Any]:
    async with _sdk(server) as sdk:
        return dict((await sdk.v1.payment_intents.retrieve_async(intent_id)).to_dict())


async def _authenticate(server: Harness, intent_id: str, client_secret: str) -> None:
    """The buyer completes 3-D Secure (what the page's Stripe.js modal does)."""
    k = _embed(server).keys
    url = f"{k.api_base}/v1/payment_intents/{intent_id}/_authenticate"
    data = {"key": k.publishable_key, "client_secret": client_secret}
    async with aiohttp.ClientSession() as http, http.post(url + "?success=true", data=data) as resp:
        assert resp.status == 200, await resp.text()


async def _paid(buyer: Client, order_id: str) -> dict[str, Any]:
    got = await buyer.wait_for(
        "order:updated",
        lambda d: d["order"]["id"] == order_id and d["order"]["status"] == "paid",
        15,
    )
    return dict(got["order"])


async def _saved_card(server: Harness, buyer: Client, drop_id: str, number: str) -> dict[str, Any]:
    """A first checkout that saves the card (the drop's tee, shipped)."""
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    method = (
        "pm_card_visa" if number == "4242424242424242" else await _payment_method(server, number)
    )
    payload = {"payment_method": method, "save_card": True, "shipping": ADDRESS}
    answer = await buyer.call("checkout:start", {**payload, "email": "Ada@Example.COM"})
    assert answer["ok"], answer
    return dict(answer)


# ---- 1. email and shipping ---------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"email": "not-an-email"},
        {"email": 42},
        {"shipping": "1 Rue de la Paix"},
        {"shipping": {**ADDRESS, "country": "XX"}},
        {"shipping": {**ADDRESS, "country": "FRA"}},
        {"shipping": {**ADDRESS, "line1": "1 Rue\nde la Paix"}},
        {"shipping": {**ADDRESS, "name": "Ada\x00"}},
        {"shipping": {**ADDRESS, "city": "P" * 101}},
        {"shipping": {**ADDRESS, "postal_code": ""}},
        {"shipping": {k: v for k, v in ADDRESS.items() if k != "city"}},
        {"shipping": {**ADDRESS, "phone": "+33"}},
        {"shipping": ADDRESS, "save_card": "yes"},
        {},  # a physical item and no address
    ],
)
async def test_bad_details_are_refused_and_change_nothing(server: Harness, bad: dict) -> None:
    _, drop_id = await _shop(server)
    buyer = await server.connect(ROOM, "bea")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    answer = await buyer.call("checkout:start", {"payment_method": "pm_card_visa", **bad})
    assert answer["ok"] is False and answer["error"]["code"] == "invalid", answer
    assert answer["error"]["message"]
    cart = await buyer.call("cart:get", {})
    assert [line["drop_id"] for line in cart["cart"]["lines"]] == [drop_id]
    assert await server.app[SHOP].orders.recent_of(ROOM, "bea") == []
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (4, 1, 0)


async def _drop_of(server: Harness, drop_id: str) -> Any:
    return await server.app[SHOP].drops.get(ROOM, drop_id)


async def test_a_shipped_order_carries_its_details_to_buyer_and_staff(server: Harness) -> None:
    mod, drop_id = await _shop(server)
    buyer = await server.connect(ROOM, "cleo")
    bystander = await server.connect(ROOM, "zed")
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    payload = {"payment_method": "pm_card_visa", "email": " Cleo.B+shop@Example.COM "}
    answer = await buyer.call("checkout:start", {**payload, "shipping": ADDRESS})
    assert answer["status"] == "succeeded", answer
    order = await _paid(buyer, answer["order_id"])
    # The local part is kept exactly (dots, +tags); the domain lower-cased.
    assert order["email"] == "Cleo.B+shop@example.com"
    assert order["shipping"] == {**ADDRESS, "country": "FR"}
    assert order["receipt"]["shipping"]["city"] == "Paris"
    assert order["receipt"]["email"] == "Cleo.B+shop@example.com"
    # The staff's live feed: a name and the country, never the address or email.
    feed = await mod.wait_for("order:feed", lambda d: d["order"]["status"] == "paid")
    assert feed["order"]["shipping"] == {"name": "Ada Buyer", "country": "FR"}
    assert "email" not in feed["order"]
    assert "Rue de la Paix" not in str(feed) and "example.com" not in str(feed)
    # Nothing of it reaches the room.
    assert "Rue de la Paix" not in str(bystander.events) and "example" not in str(bystander.events)


async def test_a_digital_order_needs_no_address_and_keeps_none(server: Harness) -> None:
    await _shop(server)
    buyer = await server.connect(ROOM, "dan")
    assert (await buyer.call("cart:add", {"product_id": "zine"}))["ok"]
    answer = await buyer.call(
        "checkout:start",
        {"payment_method": "pm_card_visa", "email": "dan@example.org", "shipping": ADDRESS},
    )
    assert answer["ok"], answer
    order = await _paid(buyer, answer["order_id"])
    assert order["shipping"] is None and order["email"] == "dan@example.org"
    no_email = await server.connect(ROOM, "eve")  # a v1 client: no details at all
    assert (await no_email.call("cart:add", {"product_id": "zine"}))["ok"]
    plain = await no_email.call("checkout:start", {"payment_method": "pm_card_visa"})
    assert plain["ok"] and plain["order"]["email"] is None


# ---- 7. resume after a reconnect -------------------------------------------


async def test_a_reconnect_mid_checkout_resumes_the_order(server: Harness) -> None:
    """A reload (a new Socket.IO connection of the same identity) resumes the
    pending order: same id, a usable client secret, listed pending; it keeps
    its address and takes the email it lacked."""
    _, drop_id = await _shop(server)
    first = await server.connect(ROOM, "fay")
    assert (await first.call("cart:add", {"drop_id": drop_id}))["ok"]
    started = await first.call("checkout:start", {"shipping": ADDRESS})
    assert started["ok"] and started["status"] == "requires_payment_method", started
    await first.close()
    again = await server.connect(ROOM, "fay")
    (listed,) = again.received("room:state")[0]["orders"]
    assert listed["id"] == started["order_id"] and listed["status"] == "pending"
    other = {**ADDRESS, "city": "Lyon"}
    resumed = await again.call("checkout:start", {"shipping": other, "email": "fay@example.com"})
    assert resumed["order_id"] == started["order_id"]
    assert resumed["client_secret"] == started["client_secret"]
    assert resumed["order"]["shipping"]["city"] == "Paris"  # what it had stays
    assert resumed["order"]["email"] == "fay@example.com"  # what it lacked is added
    # The client secret is usable: the page confirms the intent with it.
    intent = await _intent(server, started["payment_ref"])
    assert intent["client_secret"] == resumed["client_secret"]
    paid = await again.call("checkout:start", {"payment_method": "pm_card_visa"})
    assert paid["order_id"] == started["order_id"] and paid["status"] == "succeeded"
    assert (await _paid(again, started["order_id"]))["shipping"]["city"] == "Paris"


# ---- 2 and 3. saved cards and buy:now ----------------------------------------


async def test_save_a_card_then_buy_in_one_click(server: Harness) -> None:
    _, drop_id = await _shop(server, limit=3)
    ada = await _acct(server, "ada1")
    account = ada.id
    buyer = await _join(server, _room_token(server, ada))
    first = await _saved_card(server, buyer, drop_id, "4242424242424242")
    assert first["status"] == "succeeded"
    assert first["saved_card"] == {"brand": "visa", "last4": "4242"}
    await _paid(buyer, first["order_id"])
    stored = await server.app_rooms_redis().hgetall(keys.buyer_stripe(account))
    assert stored["customer"].startswith("cus_") and stored["pm"].startswith("pm_")
    async with _sdk(server) as sdk:
        customer = await sdk.v1.customers.retrieve_async(stored["customer"])
    assert customer.email == "Ada@example.com"
    assert (await _intent(server, first["payment_ref"]))["customer"] == stored["customer"]
    # Another device of the account sees the saved card (for a one-click button).
    other_device = await _join(server, _room_token(server, ada))
    saved = other_device.received("room:state")[0]["saved_card"]
    assert saved == {"brand": "visa", "last4": "4242"}
    assert buyer.received("room:state")[0]["saved_card"] is None  # before it was saved
    # A cart the buyer has stays as it is.
    assert (await buyer.call("cart:add", {"product_id": "zine"}))["ok"]
    now = await buyer.call("buy:now", {"drop_id": drop_id, "qty": 2, "shipping": ADDRESS})
    assert now["ok"], now
    assert now["status"] == "succeeded" and now["amount"] == 5000 and now["currency"] == "eur"
    assert now["client_secret"] and now["publishable_key"].startswith("pk_")
    assert now["order_id"] != first["order_id"]
    intent = await _intent(server, now["payment_ref"])
    assert intent["customer"] == stored["customer"] and intent["payment_method"] == stored["pm"]
    order = await _paid(buyer, now["order_id"])
    assert order["lines"][0]["qty"] == 2 and order["shipping"]["country"] == "FR"
    cart = (await buyer.call("cart:get", {}))["cart"]
    assert [line["product_id"] for line in cart["lines"]] == ["zine"]
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (2, 0, 3)
    # The limit of 3 holds in one click too.
    over = await buyer.call("buy:now", {"drop_id": drop_id, "shipping": ADDRESS})
    assert over["error"]["code"] == "limit_reached"
    # A digital item needs no address.
    zine = await buyer.call("buy:now", {"product_id": "zine"})
    assert zine["status"] == "succeeded", zine


async def test_buy_now_with_a_three_d_secure_card(server: Harness) -> None:
    _, drop_id = await _shop(server)
    buyer = await _join(server, _room_token(server, await _acct(server, "tds")))
    first = await _saved_card(server, buyer, drop_id, THREE_D_SECURE)
    assert first["status"] == "requires_action" and first["saved_card"]["last4"] == "3155"
    await _authenticate(server, first["payment_ref"], first["client_secret"])
    await _paid(buyer, first["order_id"])
    now = await buyer.call("buy:now", {"drop_id": drop_id, "shipping": ADDRESS})
    assert now["ok"] and now["status"] == "requires_action", now
    assert now["order"]["email"] == "tds@example.com"  # none given: the account's
    await _authenticate(server, now["payment_ref"], now["client_secret"])
    await _paid(buyer, now["order_id"])
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (3, 0, 2)


async def test_buy_now_refusals(server: Harness) -> None:
    _, drop_id = await _shop(server)
    guest_token, _ = await _guest(server)
    guest = await _join(server, guest_token)
    refused = await guest.call("buy:now", {"drop_id": drop_id, "shipping": ADDRESS})
    assert refused["error"]["code"] == "unauthorized"
    saving = await guest.call("cart:add", {"product_id": "zine"})
    assert saving["ok"]
    guest_save = {"payment_method": "pm_card_visa", "save_card": True}
    assert (await guest.call("checkout:start", guest_save))["error"]["code"] == "unauthorized"
    nocard = await _acct(server, "nocard")
    buyer = await _join(server, _room_token(server, nocard))
    no_card = await buyer.call("buy:now", {"drop_id": drop_id, "shipping": ADDRESS})
    assert no_card["error"]["code"] == "conflict"
    assert (await buyer.call("buy:now", {"drop_id": drop_id, "qty": 0}))["error"]["code"] == (
        "invalid"
    )
    # save_card with a card token (not a PaymentMethod) cannot save it.
    assert (await buyer.call("cart:add", {"product_id": "zine"}))["ok"]
    token_card = await _card(server, "4242424242424242")
    tok = {"payment_method": token_card, "save_card": True}
    assert (await buyer.call("checkout:start", tok))["error"]["code"] == "invalid"
    # A pending order stops a one-click purchase (pay or cancel it first).
    pending = await buyer.call("checkout:start", {})
    assert pending["status"] == "requires_payment_method"
    await server.app_rooms_redis().hset(
        keys.buyer_stripe(nocard.id), mapping={"customer": "cus_x", "pm": "pm_x"}
    )
    busy = await buyer.call("buy:now", {"product_id": "zine"})
    assert busy["error"]["code"] == "conflict" and pending["order_id"] in busy["error"]["message"]
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (5, 0, 0)


# ---- 4. drops that require an account; limits per account ------------------


async def test_a_drop_may_require_an_account(server: Harness) -> None:
    _, drop_id = await _shop(server, requires_account=True)
    state = (await server.connect(ROOM, "look")).received("room:state")[0]
    assert state["drops"][0]["requires_account"] is True
    guest_token, _ = await _guest(server)
    guest = await _join(server, guest_token)
    for who in (guest, await server.connect(ROOM, "plain-listener")):
        answer = await who.call("cart:add", {"drop_id": drop_id})
        assert answer["error"]["code"] == "unauthorized", answer
    # Enforced where stock is reserved, not only at the edge.
    with pytest.raises(Unauthorized):
        await server.app[SHOP].carts.add(ROOM, "bob", AddRequest(None, drop_id, 1), time.time())
    buyer = await _join(server, _room_token(server, await _acct(server, "req")))
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held) == (4, 1)


async def test_a_limit_counts_per_account_across_connections(server: Harness) -> None:
    _, drop_id = await _shop(server, limit=2)
    account = await _acct(server, "twice")
    phone = await _join(server, _room_token(server, account))
    laptop = await _join(server, _room_token(server, account))  # another token, same account
    tries = [c.call("cart:add", {"drop_id": drop_id}) for c in (phone, laptop) * 3]
    answers = await asyncio.gather(*tries)
    assert sum(a["ok"] for a in answers) == 2
    assert {a["error"]["code"] for a in answers if not a["ok"]} == {"limit_reached"}
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held) == (3, 2)
    # A guest who joins again is someone new: the reason drops may require an account.
    first, second = await _guest(server), await _guest(server)
    assert first[1] != second[1]


# ---- 5. claims ----------------------------------------------------------------


async def test_a_claim_moves_a_guests_orders_once_and_never_doubles_a_limit(
    server: Harness,
) -> None:
    _, drop_id = await _shop(server, limit=1)
    guest_token, guest_id = await _guest(server)
    guest = await _join(server, guest_token)
    assert (await guest.call("cart:add", {"drop_id": drop_id}))["ok"]
    paid = await guest.call(
        "checkout:start", {"payment_method": "pm_card_visa", "shipping": ADDRESS}
    )
    await _paid(guest, paid["order_id"])
    redis = server.app_rooms_redis()
    # What the guest is entitled to (branch delivery's library): goes along.
    await redis.zadd(keys.buyer_library(ROOM, guest_id), {"ent:tone": 1.0})
    account = await _acct(server, "claimer")
    bearer = _account_token(server, account)
    body = {"guest_token": guest_token}
    status, claimed = await server.request("POST", "/api/v1/auth/claim", json=body, token=bearer)
    assert status == 200, claimed
    assert claimed["claimed"] == {"guest": guest_id, "rooms": [ROOM], "orders": 1}
    assert await redis.zrange(keys.buyer_library(ROOM, account.id), 0, -1) == ["ent:tone"]
    status, again = await server.request("POST", "/api/v1/auth/claim", json=body, token=bearer)
    assert status == 409 and again["error"]["code"] == "conflict"
    # The order is the account's now: its /me/orders and its room snapshot.
    status, mine = await server.request("GET", "/api/v1/me/orders", token=bearer)
    assert status == 200 and [o["id"] for o in mine["orders"]] == [paid["order_id"]]
    room_side = await _join(server, _room_token(server, account))
    assert [o["id"] for o in room_side.received("room:state")[0]["orders"]] == [paid["order_id"]]
    # The limit of 1 holds for the account and for the guest token still held.
    assert (await room_side.call("cart:add", {"drop_id": drop_id}))["error"]["code"] == (
        "limit_reached"
    )
    guest_again = await _join(server, guest_token)
    assert (await guest_again.call("cart:add", {"drop_id": drop_id}))["error"]["code"] == (
        "limit_reached"
    )
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (4, 0, 1)


@pytest.mark.parametrize("case", ["no account token", "room token as proof", "forged", "expired"])
async def test_a_claim_needs_an_account_and_a_valid_guest_token(server: Harness, case: str) -> None:
    await server.create_room(id=ROOM, guests=True)
    guest_token, _ = await _guest(server)
    account = await _acct(server, "x")
    bearer: str | None = _account_token(server, account)
    if case == "no account token":
        bearer = _room_token(server, account)
    elif case == "room token as proof":
        guest_token = server.token(ROOM, "listener-bob")
    elif case == "forged":
        guest_token = guest_token[:-4] + "AAAA"
    else:
        guest_token = tokens.mint(
            server.settings.secret,
            room=ROOM,
            identity="guest-old",
            role=Role.LISTENER,
            name="g",
            ttl_s=1,
            now=time.time() - 60,
        )
    status, body = await server.request(
        "POST", "/api/v1/auth/claim", json={"guest_token": guest_token}, token=bearer
    )
    expected = 401 if case == "no account token" else 400
    assert status == expected, body
    assert body["error"]["code"] in ("unauthorized", "invalid")


# ---- 6. /me/orders ----------------------------------------------------------------


async def test_my_orders_newest_first_across_rooms(server: Harness) -> None:
    await _shop(server)
    await server.create_room(id="second")
    mod = await server.connect("second", "mod2", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "zine"}))["ok"]
    account = await _acct(server, "rooms")
    order_ids = []
    for room in (ROOM, "second", ROOM):
        buyer = await _join(server, _room_token(server, account, room))
        assert (await buyer.call("cart:add", {"product_id": "zine"}))["ok"]
        answer = await buyer.call("checkout:start", {"payment_method": "pm_card_visa"})
        order_ids.append(answer["order_id"])
        await _paid(buyer, answer["order_id"])
    status, body = await server.request(
        "GET", "/api/v1/me/orders", token=_account_token(server, account)
    )
    assert status == 200
    assert [o["id"] for o in body["orders"]] == order_ids[::-1]
    assert all(o["status"] == "paid" and o["receipt"] for o in body["orders"])
    # A room token of that identity works too; someone else's sees none of it.
    status, same = await server.request(
        "GET", "/api/v1/me/orders", token=_room_token(server, account, "second")
    )
    assert [o["id"] for o in same["orders"]] == order_ids[::-1]
    status, other = await server.request(
        "GET", "/api/v1/me/orders", token=_room_token(server, await _acct(server, "other"))
    )
    assert status == 200 and other["orders"] == []
    status, _ = await server.request("GET", "/api/v1/me/orders")
    assert status == 401
    # A token an admin minted names no buyer (only /join and /guest do).
    status, _ = await server.request("GET", "/api/v1/me/orders", token=server.token(ROOM, "bob"))
    assert status == 401


async def test_a_claim_takes_a_pending_order_and_leaves_the_cart_to_the_guest(
    server: Harness,
) -> None:
    _, drop_id = await _shop(server, limit=2)
    guest_token, _ = await _guest(server)
    guest = await _join(server, guest_token)
    assert (await guest.call("cart:add", {"drop_id": drop_id}))["ok"]
    pending = await guest.call("checkout:start", {"shipping": ADDRESS})
    assert pending["status"] == "requires_payment_method"
    assert (await guest.call("cart:add", {"drop_id": drop_id}))["ok"]  # a cart beside it
    account = await _acct(server, "pending")
    body = {"guest_token": guest_token}
    bearer = _account_token(server, account)
    status, _ = await server.request("POST", "/api/v1/auth/claim", json=body, token=bearer)
    assert status == 200
    mine = await _join(server, _room_token(server, account))
    resumed = await mine.call("checkout:start", {})
    assert resumed["order_id"] == pending["order_id"]  # the pending order is the account's
    # The account counts the guest's pending unit, not the unit in the guest's cart.
    assert (await mine.call("cart:add", {"drop_id": drop_id}))["ok"]
    assert (await mine.call("cart:add", {"drop_id": drop_id}))["error"]["code"] == "limit_reached"
    paid = await mine.call("checkout:start", {"payment_method": "pm_card_visa"})
    assert paid["order_id"] == pending["order_id"] and paid["status"] == "succeeded"
    await _paid(mine, pending["order_id"])
    drop = await _drop_of(server, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (2, 2, 1)
