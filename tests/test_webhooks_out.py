"""Outbound webhooks (issue 13, PROTOCOL "Creator studio"): creators register
endpoints on their own systems and get their rooms' sales, drops and live
state there, signed per the Standard Webhooks spec (checked with the
`standardwebhooks` library on a real receiver on loopback), retried with
backoff, and never delivered to loopback or private addresses unless the
server allows it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families as parse_text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts import hooks
from accounts.hook_guard import refusal
from accounts.hook_queue import HookQueue
from accounts.model import CREATOR
from commerce.events import ORDER_UPDATED
from kernel.errors import Invalid
from kernel.events import to_identity
from server import tokens
from server.appkeys import ACCOUNTS, EMITTER, SCHEDULER
from server.config import Settings
from server.hooks import sender
from server.shop.resources import STRIPE_EMBED
from tests.harness import Harness, free_port, redis_client
from tests.harness import test_settings as make_settings

ROOM = "hookroom"
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
    """Loopback targets allowed (the receiver is on 127.0.0.1) unless a test
    parametrises `webhook_allow_private` off."""
    overrides = {"webhook_allow_private": True, **getattr(request, "param", {})}
    return make_settings(tmp_path / "data", redis_url, **overrides)


PRIVATE_OFF = pytest.mark.parametrize("settings", [{"webhook_allow_private": False}], indirect=True)


@dataclass
class Received:
    headers: dict[str, str]
    body: str

    @property
    def type(self) -> str:
        return str(json.loads(self.body)["type"])


@dataclass
class Receiver:
    """A creator's system: records every request, answers from `answers`
    (then 200)."""

    port: int = field(default_factory=free_port)
    answers: list[int] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def handle(self, request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        self.got.append(Received(dict(request.headers), body))
        self.arrived.set()
        status = self.answers.pop(0) if self.answers else 200
        if 300 <= status < 400:  # to itself: a client that follows comes back
            return web.Response(status=status, headers={"Location": self.url + "?again"})
        return web.Response(status=status)

    def of(self, event_type: str) -> list[Received]:
        return [r for r in self.got if r.type == event_type]

    async def wait_for(
        self, event_type: str, count: int = 1, timeout: float = 10
    ) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.of(event_type)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.of(event_type)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", rec.port).start()
    yield rec
    await runner.cleanup()


async def creator(server: Harness, name: str) -> str:
    """A signed-in creator's account token."""
    accounts = server.app[ACCOUNTS]
    account = await accounts.get_or_create(f"{name}@example.com", time.time())
    account = await accounts.grant(account.id, CREATOR)
    return tokens.mint_account(
        server.settings.secret,
        account_id=account.id,
        name=account.name,
        gen=account.gen,
        now=time.time(),
    )


async def register(server: Harness, token: str | None, url: str, events: list[str]) -> Any:
    status, body = await server.request(
        "POST",
        "/api/v1/webhooks",
        json={"url": url, "events": events},
        token=token,
        admin=token is None,
    )
    assert status == 201, body
    return body


async def log_of(server: Harness, token: str | None, endpoint_id: str) -> list[dict[str, Any]]:
    status, body = await server.request(
        "GET", f"/api/v1/webhooks/{endpoint_id}/deliveries", token=token, admin=token is None
    )
    assert status == 200, body
    return list(body["deliveries"])


async def wait_log(
    server: Harness,
    token: str | None,
    endpoint_id: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 10,
) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        while not done(log := await log_of(server, token, endpoint_id)):
            await asyncio.sleep(0.1)
    return log


def verify(secret: str, got: Received) -> Any:
    return Webhook(secret).verify(got.body, got.headers)


def signed_by(secret: str, got: Received) -> bool:
    """Whether one of the header's signatures is `secret`'s (computed with
    the library, at the header's own timestamp: the server clock may be
    ahead of the wall clock the library's `verify` insists on)."""
    when = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(got.headers["webhook-id"], when, got.body)
    return expected in got.headers["webhook-signature"].split(" ")


async def set_live(server: Harness, room: str, live: bool) -> None:
    status, body = await server.request(
        "PATCH", f"/api/v1/rooms/{room}", json={"live": live}, token=server.token(room, "h", "host")
    )
    assert status == 200, body


class Clock:
    """The server's clock, moved by the test (the delivery job reads it)."""

    def __init__(self, server: Harness) -> None:
        self.base = time.time()
        self.offset = 0.0
        server.app[SCHEDULER].clock = lambda: self.base + self.offset


# --- registration ---------------------------------------------------------------------


async def test_endpoints_belong_to_their_creator(server: Harness) -> None:
    ann, bob = await creator(server, "ann"), await creator(server, "bob")
    made = await register(server, ann, "https://ann.example/hooks", ["order.paid", "room.live"])
    assert made["id"] and made["url"] == "https://ann.example/hooks"
    assert made["events"] == ["order.paid", "room.live"]
    assert made["secret"].startswith("whsec_")
    assert len(base64.b64decode(made["secret"].removeprefix("whsec_"))) >= 24
    status, mine = await server.request("GET", "/api/v1/webhooks", token=ann)
    assert status == 200 and [w["id"] for w in mine["webhooks"]] == [made["id"]]
    assert "secret" not in mine["webhooks"][0]
    # Bob sees nothing of Ann's and can touch none of it.
    status, his = await server.request("GET", "/api/v1/webhooks", token=bob)
    assert status == 200 and his["webhooks"] == []
    for method, path in (
        ("DELETE", f"/api/v1/webhooks/{made['id']}"),
        ("POST", f"/api/v1/webhooks/{made['id']}/rotate"),
        ("GET", f"/api/v1/webhooks/{made['id']}/deliveries"),
    ):
        status, body = await server.request(method, path, token=bob)
        assert status == 404 and body["error"]["code"] == "not_found", (method, path)
    # Nor does the admin's own list show it.
    status, admins = await server.request("GET", "/api/v1/webhooks", admin=True)
    assert admins["webhooks"] == []
    status, rotated = await server.request(
        "POST", f"/api/v1/webhooks/{made['id']}/rotate", token=ann
    )
    assert status == 200 and rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != made["secret"] and rotated["previous_secret_until"] > time.time()
    status, _ = await server.request("DELETE", f"/api/v1/webhooks/{made['id']}", token=ann)
    assert status == 204
    status, mine = await server.request("GET", "/api/v1/webhooks", token=ann)
    assert mine["webhooks"] == []


async def test_a_creator_has_at_most_ten_endpoints(server: Harness) -> None:
    ann = await creator(server, "ann")
    for i in range(hooks.MAX_ENDPOINTS):
        await register(server, ann, f"https://ann.example/{i}", ["order.paid"])
    status, body = await server.request(
        "POST",
        "/api/v1/webhooks",
        json={"url": "https://ann.example/11", "events": ["order.paid"]},
        token=ann,
    )
    assert status == 409 and body["error"]["code"] == "limit_reached"
    _, mine = await server.request("GET", "/api/v1/webhooks", token=ann)
    assert len(mine["webhooks"]) == hooks.MAX_ENDPOINTS
    # Another creator's count is their own.
    await register(server, await creator(server, "bob"), "https://bob.example/", ["room.live"])


BAD_REGISTRATIONS: list[tuple[Any, Any, str]] = [
    ("https://x.example/h", [], "events"),
    ("https://x.example/h", ["order.shipped"], "unknown event"),
    ("https://x.example/h", "order.paid", "events"),
    ("ftp://x.example/h", ["order.paid"], "http or https"),
    ("https://user:pw@x.example/h", ["order.paid"], "password"),
    ("https://x.example/" + "a" * 2100, ["order.paid"], "at most"),
    ("not a url", ["order.paid"], "spaces"),
    ("https:///nohost", ["order.paid"], "host"),
    ("https://x.example:99999/", ["order.paid"], "valid URL"),
    (None, ["order.paid"], "url"),
]


@pytest.mark.parametrize(("url", "events", "said"), BAD_REGISTRATIONS)
async def test_bad_registrations_are_refused_and_change_nothing(
    server: Harness, url: Any, events: Any, said: str
) -> None:
    ann = await creator(server, "ann")
    status, body = await server.request(
        "POST", "/api/v1/webhooks", json={"url": url, "events": events}, token=ann
    )
    assert status == 400 and body["error"]["code"] == "invalid"
    assert said in body["error"]["message"]
    _, mine = await server.request("GET", "/api/v1/webhooks", token=ann)
    assert mine["webhooks"] == []


async def test_only_creators_and_the_admin_register(server: Harness) -> None:
    payload = {"url": "https://x.example/h", "events": ["order.paid"]}
    status, body = await server.request("POST", "/api/v1/webhooks", json=payload)
    assert status == 401
    accounts = server.app[ACCOUNTS]
    buyer = await accounts.get_or_create("buyer@example.com", time.time())
    token = tokens.mint_account(
        server.settings.secret, account_id=buyer.id, name="b", gen=buyer.gen, now=time.time()
    )
    status, body = await server.request("POST", "/api/v1/webhooks", json=payload, token=token)
    assert status == 403 and body["error"]["code"] == "forbidden"
    await register(server, None, "https://admin.example/h", ["room.live"])


@PRIVATE_OFF
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/h",
        "http://[::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "https://10.0.0.7/h",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.1.1/h",
        "http://[fd00::1]/h",
        "http://0.0.0.0/h",
        "http://127.1/h",  # shorthands a resolver reads as addresses
        "http://2130706433/h",
        "http://0x7f000001/h",
    ],
)
async def test_literal_private_targets_are_refused_at_registration(
    server: Harness, url: str
) -> None:
    ann = await creator(server, "ann")
    status, body = await server.request(
        "POST", "/api/v1/webhooks", json={"url": url, "events": ["order.paid"]}, token=ann
    )
    assert status == 400, body
    assert "loopback or private addresses are refused" in body["error"]["message"]


GUARD_TABLE = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("224.0.0.251", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("ff02::1", "multicast"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "link-local"),
    ("::127.0.0.1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::", "loopback"),
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("::ffff:8.8.8.8", None),
    ("2606:4700:4700::1111", None),
]


@pytest.mark.parametrize(("address", "kind"), GUARD_TABLE)
def test_which_addresses_a_webhook_may_reach(address: str, kind: str | None) -> None:
    why = refusal(address)
    if kind is None:
        assert why is None
    else:
        assert why is not None and why.startswith(kind)


def test_url_rules_allow_names_and_public_addresses() -> None:
    assert hooks.check_url("https://hooks.example.com:8443/p?q=1") == (
        "https://hooks.example.com:8443/p?q=1"
    )
    assert hooks.check_url("http://8.8.8.8/h")
    assert hooks.check_url("http://127.0.0.1/h", allow_private=True)
    with pytest.raises(Invalid):
        hooks.check_url("http://[::ffff:7f00:1]/h")


def test_retries_back_off_for_about_a_day_then_stop() -> None:
    now = 1000.0
    waits = [hooks.retry_at(n, now, 0.0) for n in range(1, 10)]
    assert waits[:4] == [now + 5, now + 30, now + 120, now + 600]
    total = sum(w - now for w in waits if w is not None)
    assert 20 * 3600 < total < 26 * 3600
    assert waits[-1] is None
    jittered = hooks.retry_at(1, now, 0.99)
    assert jittered is not None and now + 5 < jittered <= now + 6


# --- delivery -------------------------------------------------------------------------


async def test_room_events_reach_the_owners_endpoints_signed(
    server: Harness, receiver: Receiver
) -> None:
    ann = await creator(server, "ann")
    made = await register(server, ann, receiver.url, ["room.live", "room.ended"])
    other = await register(server, None, receiver.url + "?admin", ["room.live"])
    status, _ = await server.request(
        "POST", "/api/v1/rooms", json={"id": ROOM, "title": "A"}, token=ann
    )
    assert status == 201
    await set_live(server, ROOM, True)
    await set_live(server, ROOM, True)  # still live: nothing new
    (live,) = await receiver.wait_for("room.live")
    payload = verify(made["secret"], live)
    assert payload["data"]["id"] == ROOM and payload["data"]["live"] is True
    assert payload["timestamp"].endswith("Z")
    with pytest.raises(WebhookVerificationError):
        verify(other["secret"], live)  # the admin's endpoint is not the owner's
    await set_live(server, ROOM, False)
    (ended,) = await receiver.wait_for("room.ended")
    assert verify(made["secret"], ended)["data"]["live"] is False
    await set_live(server, ROOM, True)  # a second live session: a second room.live
    second = await receiver.wait_for("room.live", 2)
    assert second[0].headers["webhook-id"] != second[1].headers["webhook-id"]
    log = await wait_log(server, ann, made["id"], lambda d: len(d) == 3)
    assert [d["type"] for d in log] == ["room.live", "room.ended", "room.live"]
    assert all(d["state"] == "delivered" and d["last_status"] == 200 for d in log)
    assert log[0]["delivered_at"] and log[0]["attempts"] == 1
    assert await log_of(server, None, other["id"]) == []


async def test_a_failing_receiver_gets_retries(server: Harness, receiver: Receiver) -> None:
    clock = Clock(server)
    ann = await creator(server, "ann")
    made = await register(server, ann, receiver.url, ["room.live"])
    await server.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "A"}, token=ann)
    receiver.answers = [500, 500]
    await set_live(server, ROOM, True)
    (log,) = await wait_log(server, ann, made["id"], lambda d: bool(d) and d[0]["attempts"] == 1)
    assert log["state"] == "pending" and log["last_status"] == 500
    assert log["last_error"] == "answered 500"
    assert clock.base + 5 <= log["next_retry_at"] <= clock.base + 6
    clock.offset = 7
    (log,) = await wait_log(server, ann, made["id"], lambda d: d[0]["attempts"] == 2)
    assert log["state"] == "pending"
    assert clock.base + 7 + 30 <= log["next_retry_at"] <= clock.base + 7 + 36
    clock.offset = 44
    (log,) = await wait_log(server, ann, made["id"], lambda d: d[0]["state"] == "delivered")
    assert log["attempts"] == 3 and log["last_status"] == 200 and log["next_retry_at"] is None
    tries = receiver.of("room.live")
    assert len(tries) == 3
    assert len({t.headers["webhook-id"] for t in tries}) == 1  # receivers de-duplicate by it
    assert log["event_id"] == tries[0].headers["webhook-id"]
    for got in tries:
        verify(made["secret"], got)
    assert await attempts_metric(server) == {"retry": 2.0, "delivered": 1.0}


async def attempts_metric(server: Harness) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        text = await resp.text()
    return {
        sample.labels["outcome"]: sample.value
        for family in parse_text(text)
        for sample in family.samples
        if sample.name == "droproom_webhook_attempts_total"
    }


async def test_redirects_are_not_followed(server: Harness, receiver: Receiver) -> None:
    ann = await creator(server, "ann")
    made = await register(server, ann, receiver.url, ["room.live"])
    await server.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "A"}, token=ann)
    receiver.answers = [302]
    await set_live(server, ROOM, True)
    (log,) = await wait_log(server, ann, made["id"], lambda d: bool(d) and d[0]["attempts"] == 1)
    assert log["state"] == "pending" and log["last_status"] == 302
    assert "redirects are not followed" in log["last_error"]
    assert len(receiver.got) == 1


async def test_rotation_signs_with_both_secrets_during_the_grace(
    server: Harness, receiver: Receiver
) -> None:
    clock = Clock(server)
    ann = await creator(server, "ann")
    made = await register(server, ann, receiver.url, ["room.live", "room.ended"])
    await server.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "A"}, token=ann)
    status, rotated = await server.request(
        "POST", f"/api/v1/webhooks/{made['id']}/rotate", token=ann
    )
    assert status == 200
    await set_live(server, ROOM, True)
    (live,) = await receiver.wait_for("room.live")
    assert live.headers["webhook-signature"].count("v1,") == 2
    verify(made["secret"], live)  # a receiver not yet updated
    verify(rotated["secret"], live)  # and one that is
    clock.offset = hooks.ROTATION_GRACE_S + 60  # the grace is over
    await set_live(server, ROOM, False)
    (ended,) = await receiver.wait_for("room.ended")
    assert signed_by(rotated["secret"], ended)
    assert not signed_by(made["secret"], ended)
    assert ended.headers["webhook-signature"].count("v1,") == 1


@PRIVATE_OFF
async def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    server: Harness, receiver: Receiver
) -> None:
    ann = await creator(server, "ann")
    url = f"http://localhost:{receiver.port}/hooks"  # a name: allowed at registration
    made = await register(server, ann, url, ["room.live"])
    await server.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "A"}, token=ann)
    await set_live(server, ROOM, True)
    (log,) = await wait_log(server, ann, made["id"], lambda d: bool(d) and d[0]["attempts"] == 1)
    assert log["state"] == "pending" and log["last_status"] is None
    assert log["last_error"] == "refused: localhost resolves to a loopback address"
    assert receiver.got == []


async def test_the_connection_goes_to_the_address_that_was_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers loopback once, then another address;
    the one checked is the one connected to (one lookup per delivery)."""
    answers = ["127.0.0.1", "203.0.113.9"]
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        asked.append(host)
        address = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    url = f"http://rebind.example:{receiver.port}/hooks"
    body = '{"type":"room.live"}'
    out = await sender.post(url, body, {"webhook-id": "msg_x"}, True, 5)
    assert out.ok and out.status == 200, out
    assert asked == ["rebind.example"]
    assert receiver.got[0].headers["Host"] == f"rebind.example:{receiver.port}"
    # Any refused address among the answers refuses the delivery (nothing is sent).
    answers[:] = ["8.8.8.8"]

    async def mixed(host: str, port: int, **_: Any) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("8.8.8.8", "10.0.0.1")
        ]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", mixed)
    out = await sender.post(url, body, {"webhook-id": "msg_y"}, False, 5)
    assert not out.ok and out.error == "refused: rebind.example resolves to a private address"
    assert len(receiver.got) == 1


async def test_a_receiver_that_does_not_answer_in_time_fails_the_attempt() -> None:
    """The delivery's time limit covers the answer (here 0.2 s for a
    receiver that answers only when the test is over; deliveries use
    hooks.TIMEOUT_S, 5 s)."""
    slow = web.Application()
    over = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        await over.wait()
        return web.Response()

    slow.router.add_post("/hooks", stall)
    runner = web.AppRunner(slow, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        out = await sender.post(f"http://127.0.0.1:{port}/hooks", "{}", {}, True, 0.2)
    finally:
        over.set()
        await runner.cleanup()
    assert not out.ok and out.status is None and out.error == "no answer within 0.2 s"


async def test_a_deleted_endpoint_gets_nothing_more(server: Harness, receiver: Receiver) -> None:
    ann = await creator(server, "ann")
    made = await register(server, ann, receiver.url, ["room.live"])
    await server.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "A"}, token=ann)
    status, _ = await server.request("DELETE", f"/api/v1/webhooks/{made['id']}", token=ann)
    assert status == 204
    await set_live(server, ROOM, True)
    kept = await register(server, ann, receiver.url + "?2", ["room.ended"])
    await set_live(server, ROOM, False)
    await receiver.wait_for("room.ended")
    assert receiver.of("room.live") == []
    assert (await log_of(server, ann, kept["id"]))[0]["type"] == "room.ended"


# --- a real sale through localstripe ---------------------------------------------------


async def _card(server: Harness, number: str) -> str:
    """Tokenise a card with the publishable key, as Stripe.js's createToken does."""
    embedded = server.app[STRIPE_EMBED]
    assert embedded is not None
    keys = embedded.keys
    data = {"key": keys.publishable_key, "card[number]": number, "card[exp_month]": "12"}
    data.update({"card[exp_year]": "2034", "card[cvc]": "123"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(keys.api_base + "/v1/tokens", data=data) as resp,
    ):
        body = await resp.json()
    return str(body["card"]["id"])


async def _creators_drop(server: Harness, token: str) -> str:
    """Ann's room and product, and a drop live at once (scheduled by her moderator)."""
    status, body = await server.request(
        "POST", "/api/v1/rooms", json={"id": ROOM, "title": "Ann's room"}, token=token
    )
    assert status == 201, body
    product = {"id": "tee", "title": "Tee", "price": 2500, "currency": "EUR", "kind": "physical"}
    status, body = await server.request("POST", "/api/v1/products", json=product, token=token)
    assert status == 201, body
    mod = await server.connect(ROOM, "mod", "moderator")
    now = time.time()
    payload = {"product_id": "tee", "starts_at": now, "ends_at": now + 600, "stock": 1}
    answer = await mod.call("drop:schedule", payload)
    assert answer["ok"], answer
    return str(answer["drop"]["id"])


async def test_a_sale_is_one_signed_order_paid_webhook(server: Harness, receiver: Receiver) -> None:
    ann = await creator(server, "ann")
    made = await register(server, ann, receiver.url, ["order.paid", "drop.live", "drop.sold_out"])
    admins = await register(server, None, receiver.url + "?admin", ["order.paid"])
    drop_id = await _creators_drop(server, ann)
    (live,) = await receiver.wait_for("drop.live")
    assert verify(made["secret"], live)["data"]["id"] == drop_id
    buyer = await server.connect(ROOM, "alice")
    assert (await buyer.call("cart:add", {"drop_id": drop_id, "qty": 1}))["ok"]
    card = await _card(server, "4242424242424242")
    email = {"email": "alice@example.com"}
    answer = await buyer.call("checkout:start", {**SHIP, **email, "payment_method": card})
    assert answer["ok"] and answer["status"] == "succeeded", answer
    paid = await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    order_id = paid["order"]["id"]
    (got,) = await receiver.wait_for("order.paid")
    payload = verify(made["secret"], got)
    assert payload["type"] == "order.paid"
    data = payload["data"]
    assert data["id"] == order_id and data["room"] == ROOM and data["status"] == "paid"
    assert data["total"] == 2500 and data["currency"] == paid["order"]["currency"]
    assert data["buyer"] == "alice" and data["email"] == "alice@example.com"
    assert data["lines"][0]["product_id"] == "tee"
    assert "client_secret" not in got.body and "card" not in data
    expected_id = "msg_" + hashlib.sha1(f"order.paid:{ROOM}:{order_id}".encode()).hexdigest()
    assert got.headers["webhook-id"] == expected_id
    (sold_out,) = await receiver.wait_for("drop.sold_out")
    assert verify(made["secret"], sold_out)["data"]["remaining"] == 0
    # The same domain event again (a retried webhook, another process): nothing new.
    await server.app[EMITTER].emit([to_identity(ROOM, "alice", ORDER_UPDATED, paid)])
    log = await wait_log(
        server, ann, made["id"], lambda d: all(x["state"] == "delivered" for x in d) and len(d) == 3
    )
    assert sorted(d["type"] for d in log) == ["drop.live", "drop.sold_out", "order.paid"]
    assert len(receiver.of("order.paid")) == 1
    # The admin's endpoint hears nothing of Ann's room.
    assert await log_of(server, None, admins["id"]) == []


async def test_an_event_emitted_by_two_processes_is_enqueued_once(redis_url: str) -> None:
    """Two processes hear the same domain event: one script decides, one
    delivery per endpoint, one message id."""
    first, second = (redis_client(redis_url, decode_responses=True) for _ in range(2))
    try:
        endpoint = hooks.Endpoint("wh_1", "acct_x", "https://x.example/h", ("order.paid",), "s", 0)
        ref = f"r{time.time_ns()}:o1"
        body = hooks.message_body("order.paid", 1.0, {"id": "o1"})
        ids = await asyncio.gather(
            *(
                HookQueue(r).enqueue_once("order.paid", ref, body, [endpoint], 1.0)
                for r in (first, second)
            )
        )
        assert sorted(ids, key=str) == sorted(
            [None, "msg_" + hashlib.sha1(f"order.paid:{ref}".encode()).hexdigest()], key=str
        )
        log = await HookQueue(first).log("acct_x", "wh_1")
        assert [d.msg_id for d in log if d.body == body] == [i for i in ids if i]
    finally:
        for r in (first, second):
            await r.aclose()
