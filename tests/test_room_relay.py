"""Room events between processes (issue 14): two server nodes on one Redis
(or, with `--redis-cluster`, on a Redis 7 Cluster through sharded pub/sub)
relay a room's events to each other through server/relay, and a node hears
only the rooms it holds clients of."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from server import emitter
from server.appkeys import SIO
from server.config import Settings
from server.relay import channels, wire
from server.relay.manager import RECEIVED, RoomRelay
from server.revoked_tokens import invite_channel
from server.roles import Role
from tests.harness import (
    Client,
    Harness,
    connect,
    free_port,
    is_cluster,
    redis_client,
    start_server,
    stop_server,
)
from tests.harness import test_settings as make_settings
from tests.test_accounts import sign_in, smtp  # noqa: F401  (the smtp fixture)
from tests.test_operations import Served, serve, stop
from tests.test_studio_invites import disconnected

# --- the channels of a room (pure) -------------------------------------------


def test_every_socketio_room_of_a_room_shares_one_channel() -> None:
    names = [
        emitter.room_channel("stage-1"),
        emitter.staff_channel("stage-1"),
        emitter.identity_channel("stage-1", "acct_9"),
        invite_channel("stage-1", "inv_3"),
    ]
    assert {channels.member_channel(name) for name in names} == {"droproom:sio:{room:stage-1}"}
    assert {channels.publish_channel(name) for name in names} == {"droproom:sio:{room:stage-1}"}
    assert channels.member_channel(emitter.room_channel("stage-2")) != channels.member_channel(
        names[0]
    )


def test_accounts_sids_and_everyone_have_their_own_channels() -> None:
    account = emitter.account_channel("acct_9")
    assert channels.member_channel(account) == channels.publish_channel(account)
    assert channels.member_channel(account) == "droproom:sio:account:acct_9"
    sid = "0123456789abcdef.AbC-d_e"
    assert channels.member_channel(sid) is None  # a sid needs no subscription of its own
    assert channels.publish_channel(sid) == channels.host_channel("0123456789abcdef")
    assert channels.publish_channel(None) == channels.ALL
    assert channels.publish_channel("some-other-room") == channels.ALL
    assert channels.publish_channel("not-a-host.x") == channels.ALL


def test_messages_keep_bytes_and_several_arguments() -> None:
    message = {"method": "emit", "data": wire.pack_args((b"\x00\xff", {"n": 1})), "host_id": "h"}
    raw = wire.encode(message, "0123456789abcdef")
    assert wire.sender(raw) == "0123456789abcdef"
    back = wire.decode(raw)
    assert back is not None
    assert wire.unpack_args(back["data"]) == (b"\x00\xff", {"n": 1})
    assert wire.unpack_args(wire.pack_args({"n": 1})) == {"n": 1}
    assert wire.decode(b"\xc1 not msgpack") is None
    assert wire.decode(wire.encode({"no": "method"}, "0123456789abcdef")) is None


# --- two nodes ---------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: Any) -> Settings:  # noqa: F811
    return make_settings(tmp_path / "data", redis_url, multi_node=True, smtp_url=smtp.url)


@pytest.fixture
async def nodes(settings: Settings) -> AsyncIterator[tuple[Harness, Harness]]:
    a = await start_server(settings)
    b = await start_server(settings.with_(port=free_port()))
    try:
        yield a, b
    finally:
        await stop_server(b)
        await stop_server(a)


def relay(node: Harness) -> RoomRelay:
    manager = node.app[SIO].manager
    assert isinstance(manager, RoomRelay)
    return manager


def listen_in(node: Harness, monkeypatch: pytest.MonkeyPatch) -> list[wire.Message]:
    """Every message the node's relay decodes from Redis, from now on."""
    manager, heard = relay(node), []
    deliver = manager._deliver

    async def spy(raw: bytes) -> None:
        message = wire.decode(raw)
        if message is not None and wire.sender(raw) != manager.host_id:
            heard.append(message)
        await deliver(raw)

    monkeypatch.setattr(manager, "_deliver", spy)
    return heard


async def all_heard(sender: Harness, heard: list[wire.Message]) -> None:
    """Wait until a broadcast `sender` sends now is heard: Redis delivers a
    publisher's messages in order, so whatever it published before is in."""
    await sender.app[SIO].emit("relay:sentinel", {"from": relay(sender).host_id})
    async with asyncio.timeout(5):
        while not any(m.get("event") == "relay:sentinel" for m in heard):
            await asyncio.sleep(0.01)


def rooms_in(heard: list[wire.Message]) -> set[str | None]:
    return {channels.room_of(m["room"]) for m in heard if isinstance(m.get("room"), str)}


async def chat(client: Client, text: str) -> None:
    answer = await client.call("chat:send", {"text": text})
    assert answer["ok"], answer


def has_text(text: str) -> Any:
    return lambda data: data["message"]["text"] == text


async def test_a_rooms_events_reach_its_clients_on_both_nodes(
    nodes: tuple[Harness, Harness],
) -> None:
    a, b = nodes
    await a.create_room(id="both")
    ann = await a.connect("both", "ann", "moderator")
    bo = await b.connect("both", "bo", "moderator")
    await chat(ann, "decided on a")
    await chat(bo, "decided on b")
    for client in (ann, bo):
        await client.wait_for("chat:message", has_text("decided on a"))
        await client.wait_for("chat:message", has_text("decided on b"))


async def test_a_node_hears_nothing_of_a_room_it_holds_no_client_of(
    nodes: tuple[Harness, Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    await a.create_room(id="heard")
    await a.create_room(id="unheard")
    far = await b.connect("heard", "bo")
    loud = await a.connect("unheard", "ann", "moderator")
    near = await a.connect("heard", "cy", "moderator")
    heard = listen_in(b, monkeypatch)
    received = relay(b).counts[RECEIVED]
    for i in range(3):
        await chat(loud, f"only a hears this {i}")
    unheard = [
        emitter.room_channel("unheard"),
        emitter.staff_channel("unheard"),
        emitter.identity_channel("unheard", "ann"),
        invite_channel("unheard", "inv_1"),
    ]
    for i in range(5):
        for name in unheard:
            await a.app[SIO].emit("relay:loud", {"n": i}, room=name)
    await loud.wait_for("relay:loud", lambda data: data["n"] == 4)
    await chat(near, "b hears this")
    await far.wait_for("chat:message", has_text("b hears this"))
    assert "unheard" not in rooms_in(heard)
    assert "heard" in rooms_in(heard)
    assert relay(b).counts[RECEIVED] - received == len(heard) < 20
    assert channels.member_channel("r:unheard") not in relay(b).channels
    metrics = await metrics_text(b)
    assert f'droproom_relay_messages_total{{direction="received"}} {len(heard)}' in metrics


async def metrics_text(node: Harness) -> str:
    async with aiohttp.ClientSession() as http, http.get(node.url + "/metrics") as resp:
        return await resp.text()


async def test_the_last_client_leaving_ends_the_subscription(
    nodes: tuple[Harness, Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = nodes
    await a.create_room(id="brief")
    speaker = await a.connect("brief", "ann", "moderator")
    far = await b.connect("brief", "bo", "moderator")
    room = channels.member_channel("r:brief")
    assert room in relay(b).channels
    await far.close()
    async with asyncio.timeout(5):
        while room in relay(b).channels:
            await asyncio.sleep(0.02)
    heard = listen_in(b, monkeypatch)
    await chat(speaker, "nobody on b")
    await chat(speaker, "still nobody on b")
    await all_heard(a, heard)
    assert "brief" not in rooms_in(heard)


async def test_emits_to_a_sid_and_to_everyone_cross_nodes(nodes: tuple[Harness, Harness]) -> None:
    a, b = nodes
    await a.create_room(id="direct")
    near = await a.connect("direct", "ann")
    far = await b.connect("direct", "bo")
    sid = far.sio.get_sid("/")
    assert sid is not None and channels.host_of_sid(sid) == relay(b).host_id
    await a.app[SIO].emit("relay:direct", {"to": "bo"}, to=sid)
    assert (await far.wait_for("relay:direct")) == {"to": "bo"}
    await a.app[SIO].emit("relay:all", {"n": 1})
    for client in (near, far):
        assert (await client.wait_for("relay:all")) == {"n": 1}
    assert near.received("relay:direct") == []


async def test_an_ack_comes_back_across_nodes(nodes: tuple[Harness, Harness]) -> None:
    a, b = nodes
    await a.create_room(id="ack")
    far = await b.connect("ack", "bo")

    async def pong(data: Any) -> Any:
        return {"pong": data["ping"]}

    far.sio.on("relay:ping", pong)
    answer = await a.app[SIO].call("relay:ping", {"ping": 7}, to=far.sio.get_sid("/"), timeout=5)
    assert answer == {"pong": 7}


async def test_a_node_disconnects_a_client_held_by_the_other(
    nodes: tuple[Harness, Harness],
) -> None:
    a, b = nodes
    await a.create_room(id="kick")
    far = await b.connect("kick", "bo")
    await a.app[SIO].disconnect(far.sio.get_sid("/"))
    assert await disconnected(far)


async def test_sign_out_on_one_node_closes_the_accounts_sockets_on_both(
    nodes: tuple[Harness, Harness],
    smtp: Any,  # noqa: F811
) -> None:
    a, b = nodes
    room = (await a.create_room(id="signout"))["id"]
    body = await sign_in(a, smtp, "roamer@example.com")
    _, joined = await a.request("POST", f"/api/v1/rooms/{room}/join", token=body["token"])
    near = await connect(a.url, joined["token"])
    far = await connect(b.url, joined["token"])
    for client in (near, far):
        await client.wait_for("room:state")
    assert channels.member_channel(emitter.account_channel(body["account"]["id"])) in (
        relay(b).channels
    )
    status, _ = await b.request("POST", "/api/v1/auth/signout", token=body["token"])
    assert status == 200
    for client in (near, far):
        await client.wait_for("session:expired")
        assert await disconnected(client)


async def test_redis_sees_one_subscription_per_room_and_node(
    nodes: tuple[Harness, Harness], redis_url: str
) -> None:
    """One channel for all of a room's Socket.IO rooms; on a Cluster a shard
    channel held by the shard owning the room's slot, no classic channel."""
    a, b = nodes
    await a.create_room(id="counted")
    await b.connect("counted", "bo", "moderator")  # r:, i:, s: on b
    await a.connect("counted", "ann")  # r:, i: on a
    channel = channels.member_channel("r:counted")
    assert channel is not None
    if not is_cluster(redis_url):
        plain: Any = redis_client(redis_url)
        try:
            assert await plain.pubsub_numsub(channel) == [(channel.encode(), 2)]
        finally:
            await plain.aclose()
        return
    cluster: Any = redis_client(redis_url)
    try:
        await cluster.initialize()
        owner = cluster.get_node_from_key(channel)
        for node in cluster.get_primaries():
            one = aioredis.Redis(host=node.host, port=node.port)
            try:
                sharded = await one.execute_command("PUBSUB", "SHARDNUMSUB", channel)
                assert sharded == [channel.encode(), 2 if node.name == owner.name else 0]
                # no classic channel for a room (the shop's node-wide
                # `droproom:drops:stock-back` is classic on purpose)
                assert await one.pubsub_channels("droproom:sio:{room:*") == []
            finally:
                await one.aclose()
    finally:
        await cluster.aclose()


async def kill_pubsub_connections(redis_url: str) -> None:
    if not is_cluster(redis_url):
        plain: Any = redis_client(redis_url)
        try:
            await plain.client_kill_filter(_type="pubsub")
        finally:
            await plain.aclose()
        return
    cluster: Any = redis_client(redis_url)
    try:
        await cluster.initialize()
        for node in cluster.get_primaries():
            one = aioredis.Redis(host=node.host, port=node.port)
            try:
                await one.client_kill_filter(_type="pubsub")
            finally:
                await one.aclose()
    finally:
        await cluster.aclose()


async def test_a_node_hears_its_rooms_again_after_losing_its_redis_connection(
    nodes: tuple[Harness, Harness], redis_url: str
) -> None:
    a, b = nodes
    await a.create_room(id="again")
    far = await b.connect("again", "bo")
    await kill_pubsub_connections(redis_url)
    async with asyncio.timeout(15):
        while True:  # events while b reconnects are lost (pub/sub): say it until heard
            await a.app[SIO].emit("relay:again", {"n": 1}, room=emitter.room_channel("again"))
            try:
                await far.wait_for("relay:again", timeout=1)
                break
            except TimeoutError:
                continue


async def test_the_fallback_relays_through_python_socketios_manager(
    settings: Settings,
) -> None:
    a = await start_server(settings.with_(sio_relay="socketio"))
    b = await start_server(settings.with_(sio_relay="socketio", port=free_port()))
    try:
        assert not isinstance(b.app[SIO].manager, RoomRelay)
        await a.create_room(id="fallback")
        ann = await a.connect("fallback", "ann", "moderator")
        far = await b.connect("fallback", "bo")
        await chat(ann, "through AsyncRedisManager")
        await far.wait_for("chat:message", has_text("through AsyncRedisManager"))
    finally:
        await stop_server(b)
        await stop_server(a)


def test_an_unknown_relay_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DROPROOM_SIO_RELAY"):
        make_settings(tmp_path, None, sio_relay="carrier-pigeon")


async def move_slot(redis_url: str, key: str) -> None:
    """Reshard: the slot of `key` (and its keys) to another primary."""
    cluster: Any = redis_client(redis_url)
    try:
        await cluster.initialize()
        slot = cluster.keyslot(key)
        source = cluster.get_node_from_key(key)
        target = next(n for n in cluster.get_primaries() if n.name != source.name)
        primaries = [aioredis.Redis(host=n.host, port=n.port) for n in cluster.get_primaries()]
        src = aioredis.Redis(host=source.host, port=source.port)
        dst = aioredis.Redis(host=target.host, port=target.port)
        try:
            src_id = (await src.execute_command("CLUSTER", "MYID")).decode()
            dst_id = (await dst.execute_command("CLUSTER", "MYID")).decode()
            await dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            await src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := await src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                await src.execute_command(
                    "MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys
                )
            for node in (dst, src, *primaries):
                await node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        finally:
            for node in (src, dst, *primaries):
                await node.aclose()
    finally:
        await cluster.aclose()


async def test_a_rooms_channel_follows_its_slot_to_another_shard(
    nodes: tuple[Harness, Harness], redis_url: str
) -> None:
    if not is_cluster(redis_url):
        pytest.skip("resharding needs --redis-cluster")
    a, b = nodes
    await a.create_room(id="moving")
    far = await b.connect("moving", "bo")
    channel = channels.member_channel("r:moving")
    assert channel is not None
    await move_slot(redis_url, channel)
    async with asyncio.timeout(15):
        while True:  # until b listens on the new owner (the old one ended it)
            await a.app[SIO].emit("relay:moved", {"n": 1}, room=emitter.room_channel("moving"))
            try:
                await far.wait_for("relay:moved", timeout=1)
                break
            except TimeoutError:
                continue


# --- two real server processes --------------------------------------------------


def relay_received(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith('droproom_relay_messages_total{direction="received"}'):
            return float(line.split()[-1])
    return 0.0


async def received_of(served: Served) -> float:
    async with aiohttp.ClientSession() as http, http.get(served.url + "/metrics") as resp:
        return relay_received(await resp.text())


async def test_two_server_processes_relay_only_the_rooms_they_serve(
    tmp_path: Path, redis_url: str
) -> None:
    env = {"REDIS_URL": redis_url, "DROPROOM_MULTI_NODE": "1"}
    if is_cluster(redis_url):
        env["DROPROOM_REDIS_CLUSTER"] = "1"
    a = await serve(tmp_path / "a", **env)
    b = await serve(tmp_path / "b", **env)
    clients: list[Client] = []
    try:
        for room in ("shared", "only-a"):
            status, _ = await a.request(
                "POST", "/api/v1/rooms", admin=True, json={"id": room, "title": room}
            )
            assert status == 201
        far = await connect(b.url, b.token("shared", "bo"))
        near = await connect(a.url, a.token("shared", "cy", Role.MODERATOR))
        loud = [await connect(a.url, a.token("only-a", f"m{i}", Role.MODERATOR)) for i in range(4)]
        clients = [far, near, *loud]
        for client in clients:
            await client.wait_for("room:state", timeout=15)
        before = await received_of(b)
        for client in loud:  # 12 events of a room b holds no client of
            for n in range(3):
                await chat(client, f"{n}")
        await chat(near, "to both processes")
        await far.wait_for("chat:message", has_text("to both processes"))
        heard = await received_of(b) - before
        assert 1 <= heard < 12  # the shared room's event (and any of its own), none of only-a
    finally:
        for client in clients:
            await client.close()
        await stop(b)
        await stop(a)
