"""Accounts: sign-in by mail through a real SMTP server (aiosmtpd on
loopback), codes single use and expiring, `next` kept on this site, rate
limits, /me, joining a room as the account, sign-out revoking every token,
reserved identities, trusted proxies, and the email rule."""

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from accounts import keys, limits
from accounts.signin import code_hash
from accounts.signin import link as signin_link
from kernel.errors import Unauthorized
from server import tokens
from server.buyers import (
    buyer_identity,
    require_account_identity,
    require_buyer_identity,
    signed_in_account,
)
from server.client_address import parse_networks, resolve
from server.config import Settings
from tests.harness import SECRET, Harness, connect, free_port, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer, ask, code_in, exchange, html_of, text_of


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url)


async def sign_in(server: Harness, smtp: SmtpServer, address: str) -> dict:
    before = len(smtp.inbox.messages)
    status, _ = await ask(server, address)
    assert status == 202
    mails = await smtp.inbox.wait_for(before + 1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200, body
    return body


async def test_sign_in_through_a_real_smtp_server(server: Harness, smtp: SmtpServer) -> None:
    status, body = await ask(server, "  Ana.Lu+shop@Example.COM ", next="/r/demo?x=1")
    assert (status, body) == (202, {"ok": True})
    [mail] = await smtp.inbox.wait_for(1)
    assert smtp.inbox.rcpt == [["Ana.Lu+shop@example.com"]]
    assert mail["From"] == "droproom <no-reply@localhost>"
    text = text_of(mail)
    assert f"{server.url}/signin#code=" in text and "&next=/r/demo?x=1" in text
    assert "/signin#code=" in html_of(mail)
    code = code_in(mail)
    assert len(code) >= 43  # 32 random bytes, base64url
    status, body = await exchange(server, code)
    assert status == 200
    account = body["account"]
    assert account["id"].startswith("acct_") and account["email"] == "Ana.Lu+shop@example.com"
    assert body["next"] == "/r/demo?x=1"
    claims = jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["kind"] == "account" and claims["sub"] == account["id"]
    assert claims["exp"] - claims["iat"] == 30 * 24 * 3600
    status, me = await server.request("GET", "/api/v1/me", token=body["token"])
    assert status == 200
    assert me == {"account": {**account, "roles": []}}
    # single use
    status, again = await exchange(server, code)
    assert status == 401 and again["error"]["code"] == "unauthorized"


async def test_only_the_hash_of_a_code_is_stored_and_it_expires(
    server: Harness, smtp: SmtpServer
) -> None:
    await ask(server, "late@example.com")
    code = code_in((await smtp.inbox.wait_for(1))[0])
    redis = server.app_rooms_redis()
    assert await redis.get(keys.signin_code(code)) is None
    ttl = await redis.ttl(keys.signin_code(code_hash(code)))
    assert 14 * 60 < ttl <= 15 * 60
    await redis.pexpire(keys.signin_code(code_hash(code)), 1)
    await asyncio.sleep(0.05)
    status, body = await exchange(server, code)
    assert status == 401 and body["error"]["code"] == "unauthorized"


async def test_the_code_never_reaches_the_logs(
    server: Harness, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = await sign_in(server, smtp, "quiet@example.com")
    code = code_in(smtp.inbox.messages[-1])
    assert body["token"]
    # what our server logged (aiosmtpd, the test's SMTP server, logs the mail it receives)
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]
    logged = "\n".join(r.getMessage() for r in ours)
    assert "signed in" in logged  # the log was captured
    assert code not in logged and code_hash(code) not in logged


def test_next_survives_the_link() -> None:
    from urllib.parse import parse_qs

    path = "/r/demo?a=1&b=x+y%20z"
    link = signin_link("https://shop.example/", "CODE", path)
    fragment = link.split("#", 1)[1]
    assert link.startswith("https://shop.example/signin#code=CODE&next=")
    assert parse_qs(fragment) == {"code": ["CODE"], "next": [path]}


@pytest.mark.parametrize(
    "bad",
    ["//evil.example", "https://evil.example/", "/\\evil.example", "r/demo", "/a b", "/\tx", 7],
)
async def test_next_must_be_a_path_on_this_site(server: Harness, bad: object) -> None:
    status, body = await ask(server, "next@example.com", next=bad)
    assert status == 400 and body["error"]["code"] == "invalid"


@pytest.mark.parametrize("bad", ["", "nobody", "a@b", "a@@b.com", "a..b@x.com", None])
async def test_a_malformed_address_is_refused(server: Harness, bad: object) -> None:
    status, body = await ask(server, bad)  # type: ignore[arg-type]
    assert status == 400 and body["error"]["code"] == "invalid"


async def test_the_answer_never_says_whether_an_account_exists(
    server: Harness, smtp: SmtpServer
) -> None:
    await sign_in(server, smtp, "known@example.com")
    known = await server.request("POST", "/api/v1/auth/email", json={"email": "known@example.com"})
    unknown = await server.request("POST", "/api/v1/auth/email", json={"email": "new@example.com"})
    assert known == unknown == (202, {"ok": True})
    # both get a mail, and both links sign in
    mails = await smtp.inbox.wait_for(3)
    assert sorted(m["To"] for m in mails[1:]) == ["known@example.com", "new@example.com"]


async def test_mails_per_email_are_limited_silently(server: Harness, smtp: SmtpServer) -> None:
    answers = [await ask(server, "spam@example.com") for _ in range(limits.EMAIL_LIMIT.count + 2)]
    assert all(a == (202, {"ok": True}) for a in answers)
    await smtp.inbox.wait_for(limits.EMAIL_LIMIT.count)
    await ask(server, "other@example.com")  # a later mail: the extra ones would be before it
    mails = await smtp.inbox.wait_for(limits.EMAIL_LIMIT.count + 1)
    await asyncio.sleep(1.2)  # two delivery turns
    to = [m["To"] for m in smtp.inbox.messages]
    assert to.count("spam@example.com") == limits.EMAIL_LIMIT.count
    assert len(mails) == limits.EMAIL_LIMIT.count + 1


async def test_sign_in_requests_and_exchanges_are_limited_per_client(server: Harness) -> None:
    n = limits.ADDRESS_LIMIT.count
    answers = [(await ask(server, f"p{i}@example.com"))[0] for i in range(n + 1)]
    assert answers[:n] == [202] * n and answers[n] == 429
    m = limits.EXCHANGE_LIMIT.count
    tries = [(await exchange(server, "x" * 43))[0] for _ in range(m + 1)]
    assert tries[:m] == [401] * m and tries[m] == 429


async def test_rename(server: Harness, smtp: SmtpServer) -> None:
    body = await sign_in(server, smtp, "named@example.com")
    assert body["account"]["name"].startswith("Listener ")
    status, renamed = await server.request(
        "PATCH", "/api/v1/me", json={"name": "Nico"}, token=body["token"]
    )
    assert status == 200 and renamed["account"]["name"] == "Nico"
    status, _ = await server.request("PATCH", "/api/v1/me", json={"name": " "}, token=body["token"])
    assert status == 400


async def test_join_a_room_as_the_account(server: Harness, smtp: SmtpServer) -> None:
    room = (await server.create_room(id="acct-room"))["id"]
    body = await sign_in(server, smtp, "joiner@example.com")
    account_id = body["account"]["id"]
    status, joined = await server.request("POST", f"/api/v1/rooms/{room}/join", token=body["token"])
    assert status == 200
    claims = jwt.decode(joined["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == account_id and claims["role"] == "listener" and claims["room"] == room
    assert claims["name"] == body["account"]["name"]  # never the address
    first = await connect(server.url, joined["token"])
    second = await connect(server.url, joined["token"])
    try:
        state = await first.wait_for("room:state")
        assert state["me"]["identity"] == account_id
        await second.wait_for("room:state")
        online = await server.app_rooms_redis().hgetall("{room:" + room + "}:online")
        assert online == {account_id: "2"}  # two connections, one identity
    finally:
        await first.close()
        await second.close()
    status, _ = await server.request("POST", "/api/v1/rooms/nope/join", token=body["token"])
    assert status == 404
    status, _ = await server.request(
        "POST", f"/api/v1/rooms/{room}/join", token=server.token(room, "someone")
    )
    assert status == 401  # a room token is not an account token


async def test_sign_out_revokes_every_token_of_the_account(
    server: Harness, smtp: SmtpServer
) -> None:
    room = (await server.create_room(id="signout-room"))["id"]
    body = await sign_in(server, smtp, "leaver@example.com")
    other = await sign_in(server, smtp, "stayer@example.com")
    token = body["token"]
    _, joined = await server.request("POST", f"/api/v1/rooms/{room}/join", token=token)
    live = await connect(server.url, joined["token"])
    await live.wait_for("room:state")
    status, _ = await server.request("GET", f"/api/v1/rooms/{room}", token=joined["token"])
    assert status == 200
    status, out = await server.request("POST", "/api/v1/auth/signout", token=token)
    assert (status, out) == (200, {"ok": True})
    expired = await live.wait_for("session:expired")
    assert expired["code"] == "unauthorized"
    for _ in range(50):
        if not live.sio.connected:
            break
        await asyncio.sleep(0.05)
    assert not live.sio.connected
    status, body2 = await server.request("GET", "/api/v1/me", token=token)
    assert status == 401 and body2["error"]["code"] == "unauthorized"
    status, _ = await server.request("GET", f"/api/v1/rooms/{room}", token=joined["token"])
    assert status == 401
    status, _ = await server.request("POST", f"/api/v1/rooms/{room}/join", token=token)
    assert status == 401
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(server.url, joined["token"])
    # another account is untouched, and signing in again works
    status, _ = await server.request("GET", "/api/v1/me", token=other["token"])
    assert status == 200
    again = await sign_in(server, smtp, "leaver@example.com")
    assert again["account"]["id"] == body["account"]["id"]
    status, _ = await server.request("GET", "/api/v1/me", token=again["token"])
    assert status == 200


@pytest.mark.parametrize("identity", ["acct_0123456789abcdef", "guest-abcde12345"])
async def test_admin_tokens_may_not_name_accounts_or_guests(server: Harness, identity: str) -> None:
    room = (await server.create_room(id="mint-room"))["id"]
    status, body = await server.request(
        "POST",
        "/api/v1/tokens",
        json={"room": room, "identity": identity, "role": "listener"},
        admin=True,
    )
    assert status == 400 and body["error"]["code"] == "invalid"
    assert "acct_" in body["error"]["message"]
    fine = {"room": room, "identity": "alice", "role": "host"}
    status, _ = await server.request("POST", "/api/v1/tokens", json=fine, admin=True)
    assert status == 200


@pytest.mark.parametrize("identity", ["acct_x", "guest-y"])
def test_droproom_token_refuses_accounts_and_guests(tmp_path: Path, identity: str) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "server.cli", "token", "--room", "r"),
            *("--identity", identity, "--role", "listener", "--data-dir", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "acct_" in result.stderr


async def test_creators_are_invited_by_the_admin(server: Harness, smtp: SmtpServer) -> None:
    status, body = await server.request(
        "POST", "/api/v1/creators", json={"email": "maker@example.com", "name": "Mia"}, admin=True
    )
    assert status == 200
    assert body["account"]["roles"] == ["creator"] and body["account"]["name"] == "Mia"
    [mail] = await smtp.inbox.wait_for(1)
    assert mail["To"] == "maker@example.com"
    status, signed = await exchange(server, code_in(mail))
    assert status == 200 and signed["account"]["id"] == body["account"]["id"]
    assert signed["account"]["roles"] == ["creator"]
    status, _ = await server.request(
        "POST", "/api/v1/creators", json={"email": "x@example.com", "name": "X"}
    )
    assert status == 401


async def test_dots_and_tags_name_different_accounts(server: Harness, smtp: SmtpServer) -> None:
    dotted = await sign_in(server, smtp, "a.b@example.com")
    plain = await sign_in(server, smtp, "ab@example.com")
    tagged = await sign_in(server, smtp, "ab+x@example.com")
    upper_domain = await sign_in(server, smtp, "ab@EXAMPLE.com")
    ids = [b["account"]["id"] for b in (dotted, plain, tagged, upper_domain)]
    assert len(set(ids[:3])) == 3 and ids[3] == ids[1]


async def test_one_account_per_address_under_concurrent_sign_ins(server: Harness) -> None:
    from server.appkeys import ACCOUNTS

    store = server.app[ACCOUNTS]
    made = await asyncio.gather(*(store.get_or_create("race@example.com", 1.0) for _ in range(20)))
    assert len({a.id for a in made}) == 1


# Trusted proxies: X-Forwarded-For only from them.


def test_forwarded_for_is_read_only_from_trusted_proxies() -> None:
    proxies = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    assert resolve("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"
    assert resolve("192.0.2.1", ["203.0.113.9"], proxies) == "192.0.2.1"
    assert resolve("127.0.0.1", ["203.0.113.9"], proxies) == "203.0.113.9"
    # the client wrote the leftmost entry itself: the rightmost untrusted hop counts
    assert resolve("127.0.0.1", ["6.6.6.6, 203.0.113.9, 10.1.2.3"], proxies) == "203.0.113.9"
    assert resolve("127.0.0.1", ["garbage"], proxies) == "127.0.0.1"
    with pytest.raises(ValueError):
        parse_networks(["not-a-network"])


async def _guests(server: Harness, room: str, forwarded: str) -> list[int]:
    headers = {"X-Forwarded-For": forwarded}
    return [
        (
            await server.request(
                "POST", f"/api/v1/rooms/{room}/guest", json={"name": "G"}, headers=headers
            )
        )[0]
        for _ in range(11)
    ]


async def test_guest_minting_honours_only_a_trusted_proxy(tmp_path: Path, redis_url: str) -> None:
    trusted = await start_server(
        make_settings(tmp_path / "a", redis_url, trusted_proxies=("127.0.0.1",))
    )
    try:
        room = (await trusted.create_room(id="xff", guests=True))["id"]
        assert (await _guests(trusted, room, "198.51.100.1"))[-2:] == [201, 429]
        # another client behind the same proxy has its own budget
        status, _ = await trusted.request(
            "POST",
            f"/api/v1/rooms/{room}/guest",
            json={"name": "G"},
            headers={"X-Forwarded-For": "198.51.100.2"},
        )
        assert status == 201
        # the admin-key throttle counts the same client
        wrong = {"Authorization": "Bearer wrong", "X-Forwarded-For": "198.51.100.7"}
        tries = [
            (await trusted.request("POST", "/api/v1/rooms", json={}, headers=wrong))[0]
            for _ in range(6)
        ]
        assert tries == [401] * 5 + [429]
        other = {"Authorization": "Bearer wrong", "X-Forwarded-For": "198.51.100.8"}
        status, _ = await trusted.request("POST", "/api/v1/rooms", json={}, headers=other)
        assert status == 401
    finally:
        await stop_server(trusted)
    untrusted = await start_server(make_settings(tmp_path / "b", redis_url))
    try:
        room = (await untrusted.create_room(id="noxff", guests=True))["id"]
        statuses = [
            (
                await untrusted.request(
                    "POST",
                    f"/api/v1/rooms/{room}/guest",
                    json={"name": "G"},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
            )[0]
            for i in range(11)
        ]
        assert statuses[-2:] == [201, 429]  # a forged header buys nothing
    finally:
        await stop_server(untrusted)


async def _card(server: Harness, number: str) -> str:
    """Tokenise a card with the publishable key, as Stripe.js's createToken does."""
    from server.shop.resources import STRIPE_EMBED

    embedded = server.app[STRIPE_EMBED]
    assert embedded is not None
    k = embedded.keys
    data = {"key": k.publishable_key, "card[number]": number, "card[exp_month]": "12"}
    data.update({"card[exp_year]": "2034", "card[cvc]": "123"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(k.api_base + "/v1/tokens", data=data) as r,
    ):
        return str((await r.json())["card"]["id"])


async def test_a_signed_in_buyer_gets_a_receipt_by_mail(server: Harness, smtp: SmtpServer) -> None:
    room = (await server.create_room(id="receipt-room", modules=["shop"]))["id"]
    await server.admin_post(
        "/api/v1/products",
        {"id": "mug", "title": "Mug", "price": 1200, "currency": "EUR", "kind": "physical"},
    )
    mod = await server.connect(room, "mod", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "mug"}))["ok"]
    body = await sign_in(server, smtp, "mugs@example.com")
    _, joined = await server.request("POST", f"/api/v1/rooms/{room}/join", token=body["token"])
    buyer = await connect(server.url, joined["token"])
    try:
        await buyer.wait_for("room:state")
        added = await buyer.call("cart:add", {"product_id": "mug", "qty": 1})
        assert added["ok"], added
        answer = await buyer.call(
            "checkout:start",
            {
                "payment_method": await _card(server, "4242424242424242"),
                # a physical item ships (branch checkout2: shipping is required)
                "shipping": {
                    "name": "M",
                    "line1": "1 Main St",
                    "city": "X",
                    "postal_code": "1",
                    "country": "US",
                },
            },
        )
        assert answer["ok"] and answer["status"] == "succeeded", answer
        paid = await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    finally:
        await buyer.close()
    mails = await smtp.inbox.wait_for(2)
    receipt = mails[1]
    assert receipt["To"] == "mugs@example.com"
    assert paid["order"]["id"] in receipt["Subject"]
    text = text_of(receipt)
    assert f"{server.url}/me" in text and "12.00 EUR" in text
    assert "download" not in text.lower()  # links to the library, never to files


def _request(server: Harness, token: str) -> web.Request:
    headers = {"Authorization": f"Bearer {token}"}
    return make_mocked_request("GET", "/api/v1/me/orders", headers=headers, app=server.app)


async def test_buyers_tell_signed_in_accounts_apart(server: Harness, smtp: SmtpServer) -> None:
    room = (await server.create_room(id="buyers-room", guests=True))["id"]
    body = await sign_in(server, smtp, "who@example.com")
    account_id = body["account"]["id"]
    _, joined = await server.request("POST", f"/api/v1/rooms/{room}/join", token=body["token"])
    _, guest = await server.request("POST", f"/api/v1/rooms/{room}/guest", json={"name": "G"})
    secret = server.settings.secret
    assert signed_in_account(tokens.verify(secret, joined["token"])) == account_id
    assert signed_in_account(tokens.verify_account(secret, body["token"])) == account_id
    assert signed_in_account(tokens.verify(secret, guest["token"])) is None
    assert signed_in_account(tokens.verify(secret, server.token(room, "v1-buyer"))) is None
    for token in (body["token"], joined["token"]):
        assert await require_account_identity(_request(server, token)) == account_id
        assert await buyer_identity(_request(server, token)) == account_id
    assert await buyer_identity(_request(server, guest["token"])) == guest["identity"]
    assert await require_buyer_identity(_request(server, guest["token"])) == guest["identity"]
    assert await require_buyer_identity(_request(server, joined["token"])) == account_id
    with pytest.raises(Unauthorized):
        await require_buyer_identity(_request(server, server.token(room, "v1-buyer")))
    with pytest.raises(Unauthorized):
        await require_account_identity(_request(server, guest["token"]))
    await server.request("POST", "/api/v1/auth/signout", token=body["token"])
    for token in (body["token"], joined["token"]):
        with pytest.raises(Unauthorized):
            await buyer_identity(_request(server, token))
        with pytest.raises(Unauthorized):
            await require_account_identity(_request(server, token))


async def test_sign_in_limits_count_the_client_behind_a_trusted_proxy(
    tmp_path: Path, redis_url: str, smtp: SmtpServer
) -> None:
    behind = await start_server(
        make_settings(
            tmp_path / "p", redis_url, smtp_url=smtp.url, trusted_proxies=("127.0.0.0/8",)
        )
    )
    try:
        n = limits.ADDRESS_LIMIT.count

        async def ask_as(client: str, i: int) -> int:
            status, _ = await behind.request(
                "POST",
                "/api/v1/auth/email",
                json={"email": f"c{i}@example.com"},
                headers={"X-Forwarded-For": client},
            )
            return status

        statuses = [await ask_as("192.0.2.10", i) for i in range(n + 1)]
        assert statuses[-2:] == [202, 429]
        assert await ask_as("192.0.2.11", 0) == 202  # another client, its own budget
    finally:
        await stop_server(behind)


async def test_sign_out_closes_the_accounts_sockets_on_another_node(
    settings: Settings, smtp: SmtpServer
) -> None:
    """Two server processes on one Redis: the account's connection is on b,
    it signs out through a; b closes the connection."""
    a = await start_server(settings.with_(multi_node=True))
    b = await start_server(settings.with_(multi_node=True, port=free_port()))
    try:
        room = (await a.create_room(id="two-nodes"))["id"]
        body = await sign_in(a, smtp, "roamer@example.com")
        _, joined = await a.request("POST", f"/api/v1/rooms/{room}/join", token=body["token"])
        far = await connect(b.url, joined["token"])
        await far.wait_for("room:state")
        status, _ = await a.request("POST", "/api/v1/auth/signout", token=body["token"])
        assert status == 200
        await far.wait_for("session:expired")
        async with asyncio.timeout(5):
            while far.sio.connected:
                await asyncio.sleep(0.05)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await connect(b.url, joined["token"])
    finally:
        await stop_server(b)
        await stop_server(a)
