"""The server killed in the middle of a checkout loses nothing.

The server runs as its own process against Redis and a Stripe-compatible
server that both outlive it (as in production). It is killed with SIGKILL
right after a payment succeeded, before Stripe's webhook could reach it
(localstripe sends each webhook once, ~1 s later, and never retries). A new
server on the same data finds the paid order through its reconciler, and the
stock another buyer held in a cart comes back when that hold expires.
"""

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server import tokens
from server.embedded.stripe_embed import EmbeddedKeys, EmbeddedStripe
from server.roles import Role
from tests.harness import ADMIN_KEY, SECRET, Client, connect, free_port

ROOM = "crash"
SHIP = {
    "shipping": {
        "name": "A",
        "line1": "1 Main St",
        "city": "X",
        "postal_code": "1",
        "country": "US",
    }
}


@pytest.fixture
async def stripe_server(tmp_path: Path) -> AsyncIterator[EmbeddedStripe]:
    embedded = EmbeddedStripe(tmp_path / "stripe")
    (tmp_path / "stripe").mkdir(exist_ok=True)
    await embedded.start()
    yield embedded
    await embedded.stop()


class ServerProcess:
    """`droproom serve` as a child process that can be killed outright."""

    def __init__(self, data_dir: Path, port: int, env: dict[str, str]) -> None:
        self.data_dir, self.port, self.env = data_dir, port, env
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--workers",
            "1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while b"listening" not in (line := await self.proc.stdout.readline()):
                if not line:
                    raise RuntimeError("the server exited before listening")

    async def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 30)


async def _post(url: str, body: dict[str, Any]) -> Any:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        assert r.status < 300, await r.text()
        return await r.json()


async def _card(keys: EmbeddedKeys) -> str:
    data = {
        "key": keys.publishable_key,
        "card[number]": "4242424242424242",
        "card[exp_month]": "12",
        "card[exp_year]": "2034",
        "card[cvc]": "123",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(keys.api_base + "/v1/tokens", data=data) as resp,
    ):
        return str((await resp.json())["card"]["id"])


async def _client(url: str, identity: str, role: str = "listener") -> Client:
    token = tokens.mint(
        SECRET,
        room=ROOM,
        identity=identity,
        role=Role.parse(role),
        name=identity,
        ttl_s=600,
        now=time.time(),
    )
    client = await connect(url, token)
    await client.wait_for("room:state")
    return client


async def _state_when(url: str, identity: str, ok: Any, timeout_s: float = 20) -> dict:
    """Reconnect until `identity`'s snapshot satisfies `ok`."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = await _client(url, identity)
        state = client.received("room:state")[0]
        await client.close()
        if ok(state) or time.monotonic() > deadline:
            return dict(state)
        await asyncio.sleep(0.5)


async def test_a_paid_order_survives_a_crash_mid_checkout(
    tmp_path: Path, redis_url: str, stripe_server: EmbeddedStripe
) -> None:
    keys = stripe_server.keys
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "STRIPE_"))}
    env.update(
        {
            "REDIS_URL": redis_url,
            "DROPROOM_SECRET": SECRET,
            "DROPROOM_ADMIN_KEY": ADMIN_KEY,
            "STRIPE_SECRET_KEY": keys.secret_key,
            "STRIPE_PUBLISHABLE_KEY": keys.publishable_key,
            "STRIPE_WEBHOOK_SECRET": keys.webhook_secret,
            "STRIPE_API_BASE": keys.api_base,
            "STRIPE_JS_URL": keys.js_url,
            "DROPROOM_RECONCILE_AFTER_S": "1",
            "DROPROOM_CART_TTL_S": "4",
        }
    )
    first = ServerProcess(tmp_path / "data", port, env)
    await first.start()
    await stripe_server.register_webhook(first.url + "/api/v1/stripe/webhook")
    second = ServerProcess(tmp_path / "data", port, env)
    try:
        await _post(first.url + "/api/v1/rooms", {"id": ROOM, "title": "Crash"})
        await _post(
            first.url + "/api/v1/products",
            {"id": "cap", "title": "Cap", "price": 1500, "currency": "usd", "kind": "physical"},
        )
        mod = await _client(first.url, "mod", "moderator")
        now = time.time()
        drop = (
            await mod.call(
                "drop:schedule",
                {
                    "product_id": "cap",
                    "starts_at": now,
                    "ends_at": now + 600,
                    "stock": 5,
                    "per_buyer_limit": 2,
                },
            )
        )["drop"]
        alice = await _client(first.url, "alice")
        bob = await _client(first.url, "bob")
        assert (await alice.call("cart:add", {"drop_id": drop["id"], "qty": 1}))["ok"]
        assert (await bob.call("cart:add", {"drop_id": drop["id"], "qty": 2}))["ok"]
        paying = await alice.call("checkout:start", {**SHIP, "payment_method": await _card(keys)})
        assert paying["status"] == "succeeded", paying
        await first.kill()  # before the webhook (sent ~1 s later) can arrive
        for client in (mod, alice, bob):
            await client.close()
        await asyncio.sleep(2.0)  # the webhook is sent to nobody, once

        await second.start()
        state = await _state_when(
            second.url, "alice", lambda s: s["orders"] and s["orders"][0]["status"] == "paid"
        )
        (order,) = state["orders"]
        assert order["id"] == paying["order_id"] and order["status"] == "paid"
        assert order["receipt"]["total"] == 1500
        # Bob's hold ends by itself: only Alice's unit stays sold.
        state = await _state_when(second.url, "mod", lambda s: s["drops"][0]["remaining"] == 4)
        assert state["drops"][0]["remaining"] == 4
        assert (await _state_when(second.url, "bob", lambda s: not s["cart"]["lines"]))["cart"][
            "lines"
        ] == []
    finally:
        await first.stop()
        await second.stop()
