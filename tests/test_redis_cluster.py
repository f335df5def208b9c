"""Redis Cluster specifics (run with `pytest --redis-cluster`): two server
nodes whose REDIS_URL names different nodes of the cluster share one room,
its state and its broadcasts (Socket.IO's relay uses classic pub/sub, which
a cluster carries to every node); wave 1 data copied into a cluster is
migrated there and its pending order paid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from commerce import keys
from kernel import schema
from server import migrations
from server.embedded.redis_embed import EmbeddedRedis
from server.shop.resources import SHOP
from tests.harness import redis_client, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.redis_cluster import RedisClusterNodes
from tests.test_wave1_upgrade import IDS, copy_fixture, pay_intent


@pytest.fixture
def nodes(request: pytest.FixtureRequest, redis_url: str) -> RedisClusterNodes:
    if not request.config.getoption("--redis-cluster"):
        pytest.skip("needs --redis-cluster")
    found: RedisClusterNodes = request.getfixturevalue("redis_cluster")
    return found


async def test_two_servers_on_two_cluster_nodes_share_a_room(
    nodes: RedisClusterNodes, tmp_path: Path
) -> None:
    urls = [f"redis://127.0.0.1:{port}" for port in nodes.ports[:2]]
    a = await start_server(make_settings(tmp_path / "a", urls[0], multi_node=True))
    b = await start_server(make_settings(tmp_path / "b", urls[1], multi_node=True))
    try:
        await a.create_room(id="clustered")
        speaker = await a.connect("clustered", "ann", "moderator")
        listener = await b.connect("clustered", "bo")
        assert (await speaker.call("chat:send", {"text": "over the cluster"}))["ok"]
        got = await listener.wait_for("chat:message")
        assert got["message"]["text"] == "over the cluster"
    finally:
        await stop_server(b)
        await stop_server(a)


async def _restore_into(url: str, data: Path) -> int:
    """Every key of the wave 1 AOF, copied into the cluster (DUMP/RESTORE)."""
    embedded = EmbeddedRedis(data)
    source: Any = aioredis.Redis.from_url(await embedded.start())
    target: Any = redis_client(url)
    copied = 0
    try:
        async for key in source.scan_iter(count=1000):
            await target.restore(key, 0, await source.dump(key), replace=True)
            copied += 1
    finally:
        await source.aclose()
        await target.aclose()
        await embedded.stop()
    return copied


async def test_wave1_data_migrates_and_pays_on_a_cluster(
    nodes: RedisClusterNodes, redis_url: str, tmp_path: Path
) -> None:
    data = copy_fixture(tmp_path)
    assert await _restore_into(redis_url, data) > 10
    settings = make_settings(
        data,
        redis_url,
        secret=(data / "secret").read_text().strip(),
        admin_key=(data / "admin_key").read_text().strip(),
    )
    server = await start_server(settings)
    try:
        room, pending = IDS["room"], IDS["pending"]
        r: Any = server.app_rooms_redis()
        assert int(await r.get(schema.SCHEMA_KEY)) == migrations.CURRENT
        assert await r.hget(keys.share(room, IDS["product_id"]), "held") == "5"
        bob = await server.connect(room, pending["buyer"])
        await pay_intent(server, pending["intent_id"])
        paid = await bob.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 15)
        assert paid["order"]["id"] == pending["order_id"]
        _, inv = await server.app[SHOP].catalog.get(IDS["product_id"])
        assert inv is not None and (inv.given, inv.held, inv.sold) == (100, 3, 3)
    finally:
        await stop_server(server)
