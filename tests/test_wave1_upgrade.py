"""Wave 1 data carried forward: the redis AOF/RDB and localstripe store that
the wave 1 code wrote (tests/fixtures/wave1, made by make_fixture.py) load
into today's server, `droproom migrate` brings them to the current key
layout (once: running it again changes nothing), and the pending wave 1
order, whose intent carries none of the new metadata, gets paid."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import stripe

from commerce import keys
from commerce import migrations as commerce_migrations
from kernel import schema
from server import migrations
from server.embedded.redis_embed import EmbeddedRedis
from server.shop.resources import SHOP, STRIPE_EMBED
from tests.harness import Harness, start_server, stop_server
from tests.harness import test_settings as make_settings

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "wave1"
IDS: dict[str, Any] = json.loads((FIXTURE / "ids.json").read_text())
ROOT = Path(__file__).resolve().parent.parent


def copy_fixture(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data, ignore=shutil.ignore_patterns("*.py", "ids.json", "__pycache__"))
    for secret in ("secret", "admin_key", "localstripe_webhook_secret"):
        os.chmod(data / secret, 0o600)
    return data


@pytest.fixture
async def upgraded(tmp_path: Path) -> AsyncIterator[Harness]:
    data = copy_fixture(tmp_path)
    settings = make_settings(
        data,
        None,  # the embedded redis of the data dir, which loads the wave 1 AOF
        secret=(data / "secret").read_text().strip(),
        admin_key=(data / "admin_key").read_text().strip(),
    )
    harness = await start_server(settings)
    yield harness
    await stop_server(harness)


async def _snapshot(client: aioredis.Redis) -> dict[bytes, Any]:
    """Every key and its whole value."""
    r: Any = client
    out: dict[bytes, Any] = {}
    async for key in r.scan_iter(count=1000):
        kind = (await r.type(key)).decode()
        if kind == "hash":
            out[key] = await r.hgetall(key)
        elif kind == "set":
            out[key] = await r.smembers(key)
        elif kind == "zset":
            out[key] = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            out[key] = await r.lrange(key, 0, -1)
        elif kind == "stream":
            out[key] = await r.xrange(key)
        else:
            out[key] = await r.get(key)
    return out


async def pay_intent(server: Harness, intent_id: str) -> None:
    """The buyer's browser confirms the card with Stripe, as Stripe.js would."""
    embedded = server.app[STRIPE_EMBED]
    assert embedded is not None
    client = stripe.StripeClient(
        embedded.keys.secret_key,
        base_addresses={"api": embedded.keys.api_base},
        http_client=stripe.AIOHTTPClient(),
    )
    await client.v1.payment_intents.update_async(
        intent_id, params={"payment_method": "pm_card_visa"}
    )
    confirmed = await client.v1.payment_intents.confirm_async(intent_id)
    assert confirmed.status == "succeeded"


async def test_wave1_pending_order_gets_paid_after_upgrade(upgraded: Harness) -> None:
    server, room, pending = upgraded, IDS["room"], IDS["pending"]
    r: Any = server.app_rooms_redis()
    assert int(await r.get(schema.SCHEMA_KEY)) == migrations.CURRENT
    shop = server.app[SHOP]
    # The units bob's order and carol's cart hold moved into the room's share.
    share = await r.hgetall(keys.share(room, IDS["product_id"]))
    assert (share["held"], share["sold"]) == ("5", "0")
    _, inv = await shop.catalog.get(IDS["product_id"])
    assert inv is not None and (inv.given, inv.held, inv.sold) == (100, 5, 1)
    bob = await server.connect(room, pending["buyer"])
    (order,) = bob.received("room:state")[0]["orders"]
    assert (order["id"], order["status"]) == (pending["order_id"], "pending")
    await pay_intent(server, pending["intent_id"])
    paid = await bob.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 15)
    assert paid["order"]["id"] == pending["order_id"]
    assert paid["order"]["receipt"]["total"] == pending["amount"]
    # Stock: bob's units sold, carol's cart still holds hers, alice's order stays paid.
    _, inv = await shop.catalog.get(IDS["product_id"])
    assert inv is not None and (inv.given, inv.held, inv.sold) == (100, 3, 3)
    drop = await shop.drops.get(room, IDS["drop_id"])
    assert (drop.remaining, drop.held, drop.sold) == (6, 2, 2)
    cart = await shop.carts.get(room, IDS["cart"]["buyer"])
    assert sorted(line.qty for line in cart.lines) == [2, 3]
    assert (await shop.orders.get(room, IDS["paid"]["order_id"])).status == "paid"


async def _cli_migrate(data: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "migrate",
        "--data-dir",
        str(data),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode()


async def test_migrate_is_idempotent(tmp_path: Path) -> None:
    data = copy_fixture(tmp_path)
    first = await _cli_migrate(data)
    assert "migrated 1:" in first and f"schema at version {migrations.CURRENT}" in first
    embedded = EmbeddedRedis(data)
    client = aioredis.Redis.from_url(await embedded.start())
    try:
        before = await _snapshot(client)
        assert await migrations.run(client, 2_000_000_000.0) == []
        # The step itself, forced to run again, moves nothing twice.
        await commerce_migrations.room_shares(client, 2_000_000_000.0)
        assert await _snapshot(client) == before
    finally:
        await client.aclose()
        await embedded.stop()
    second = await _cli_migrate(data)
    assert "migrated" not in second and f"schema at version {migrations.CURRENT}" in second
