"""The cascade across real nodes on loopback: three `droproom serve
--workers 1` processes on their own ports sharing one Redis. A publisher on
one node is heard by listeners of the other two (edges fed by the owner's
relay); the owner is killed mid-stream (SIGKILL by pid), the publisher
comes back on another node, which takes the lease, and the edge listeners,
on the same WHEP sessions, hear the room again within 5 s of the lease
moving (the issue's contract)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import numpy.typing as npt
import pytest

from rooms import keys
from server import tokens
from server.roles import Role
from tests.harness import ADMIN_KEY, SECRET, is_cluster, redis_client
from tests.media_helpers import (
    AudioListener,
    TonePublisher,
    abandoned_offer,
    band_energy,
    wait_connected,
)
from tests.serve_helpers import Served, clean_env, serving

pytestmark = [pytest.mark.slow, pytest.mark.allow_blocking]
ROOM = "nodes"
SDP = "application/sdp"
FAILOVER_BOUND_S = 5.0  # issue 15: heard again within 5 s of the lease moving


class Node(Served):
    def token(self, identity: str, role: Role) -> str:
        return tokens.mint(
            SECRET,
            room=ROOM,
            identity=identity,
            role=role,
            name=identity,
            ttl_s=600,
            now=time.time(),
        )


def _env(redis_url: str, node: str) -> dict[str, str]:
    env = clean_env()
    env |= {
        "DROPROOM_NODE": node,
        "DROPROOM_ICE_HOSTS": "127.0.0.1",
        "REDIS_URL": redis_url,
        "DROPROOM_MULTI_NODE": "1",  # `--workers 1` is one process: a node of several
        # no shop here: a key so the node does not start its own localstripe
        "STRIPE_SECRET_KEY": "sk_test_nodes",
        "STRIPE_WEBHOOK_SECRET": "whsec_nodes",
    }
    if is_cluster(redis_url):
        env["DROPROOM_REDIS_CLUSTER"] = "1"
    return env


@contextlib.asynccontextmanager
async def started(
    tmp_path: Path, redis_url: str, name: str, workers: int = 1, **env: str
) -> AsyncIterator[Node]:
    """`serve --workers N` on a free port, stopped by its pid at the end."""
    async with serving(
        tmp_path / name, workers=workers, env=_env(redis_url, name) | env, kind=Node
    ) as node:
        yield node


@pytest.fixture
async def nodes(tmp_path: Path, redis_url: str) -> AsyncIterator[list[Node]]:
    async with (
        started(tmp_path, redis_url, "a") as a,
        started(tmp_path, redis_url, "b") as b,
        started(tmp_path, redis_url, "c") as c,
    ):
        try:
            yield [a, b, c]
        finally:  # shown when the test fails
            for node in (a, b, c):
                print(f"--- {node.url}", *node.lines[-60:], sep="\n")


class Signal:
    """WHIP/WHEP client side: POST the offer to a node, keep the Location."""

    def __init__(self, node: Node, kind: str, token: str) -> None:
        self.url = f"{node.url}/{kind}/{ROOM}"
        self.token = token
        self.location = ""

    async def __call__(self, offer: str) -> str:
        headers = {"Content-Type": SDP, "Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url, data=offer, headers=headers, allow_redirects=False) as r,
        ):
            body = await r.text()
            assert r.status == 201, f"{r.status}: {body}"
            self.location = r.headers["Location"]
            return body


async def create_room(node: Node) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{node.url}/api/v1/rooms", json={"id": ROOM, "title": "nodes"}, headers=headers
        ) as r,
    ):
        assert r.status == 201, await r.text()


async def publish(node: Node, freq: float) -> TonePublisher:
    publisher = await TonePublisher.start(
        freq, Signal(node, "whip", node.token("hostess", Role.HOST))
    )
    await wait_connected(publisher.pc)
    return publisher


async def listen(node: Node, identity: str) -> AudioListener:
    listener = await AudioListener.start(Signal(node, "whep", node.token(identity, Role.LISTENER)))
    await wait_connected(listener.pc)
    return listener


async def lease_token(redis_url: str, *, other_than: int = 0, limit_s: float = 20) -> int:
    """The room's lease token once it is held with a token other than `other_than`."""
    redis = redis_client(redis_url)
    try:
        async with asyncio.timeout(limit_s):
            while True:
                token = await redis.hget(keys.media_lease(ROOM), "token")
                if token is not None and int(token) != other_than:
                    return int(token)
                await asyncio.sleep(0.02)
    finally:
        await redis.aclose()


async def lapsed(redis_url: str, limit_s: float = 20) -> None:
    """Until nobody holds the room's media lease."""
    redis = redis_client(redis_url)
    try:
        async with asyncio.timeout(limit_s):
            while await redis.hget(keys.media_lease(ROOM), "holder") is not None:
                await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


async def heard(listener: AudioListener, seconds: float = 1.5) -> npt.NDArray[np.float32]:
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(seconds)
    return listener.audio_since(t0)


async def test_edges_hear_the_owner_node_and_hear_the_room_again_after_it_is_killed(
    nodes: list[Node], redis_url: str
) -> None:
    a, b, c = nodes
    await create_room(a)
    publisher = await publish(a, 440)
    first = await lease_token(redis_url)
    on_b, on_c = await listen(b, "lenny"), await listen(c, "carla")
    await asyncio.sleep(0.5)
    assert band_energy(await heard(on_b), 440) > 0.8
    assert band_energy(on_c.audio_since(asyncio.get_running_loop().time() - 1.5), 440) > 0.8

    # the owner's process dies mid-stream; its publisher comes back on node c
    killed_at = asyncio.get_running_loop().time()
    os.kill(a.proc.pid, signal.SIGKILL)
    await publisher.close()
    # while the dead owner's lease runs, node c sends publishers to it (307):
    # the publisher comes back once it lapsed
    await lapsed(redis_url)
    again = await publish(c, 880)
    loop = asyncio.get_running_loop()
    second = await lease_token(redis_url, other_than=first)
    moved_at = loop.time()
    assert second > first
    async with asyncio.timeout(FAILOVER_BOUND_S + 5):
        while not [t for t in on_b.arrivals if t >= moved_at]:
            await asyncio.sleep(0.01)
    first_packet = min(t for t in on_b.arrivals if t >= moved_at)
    print(
        f"heard again {1e3 * (first_packet - moved_at):.0f} ms after the lease moved, "
        f"{first_packet - killed_at:.1f} s after the owner was killed"
    )
    assert first_packet - moved_at <= FAILOVER_BOUND_S
    await asyncio.sleep(0.5)
    # the same sessions hear the room as the new owner sends it
    assert band_energy(await heard(on_b), 880) > 0.8
    assert band_energy(on_c.audio_since(loop.time() - 1.5), 880) > 0.8
    for peer in (again, on_b, on_c):
        await peer.close()


# --- workers of one node ----------------------------------------------------
class Pinned:
    """Requests on one kept-alive connection: one worker answers them all."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))

    async def worker(self) -> str:
        async with self.http.get(self.node.url + "/healthz") as r:
            return str((await r.json())["worker"])

    async def whep(self, token: str, offer: str) -> tuple[int, str]:
        headers = {"Content-Type": SDP, "Authorization": f"Bearer {token}"}
        async with self.http.post(
            f"{self.node.url}/whep/{ROOM}", data=offer, headers=headers, allow_redirects=False
        ) as r:
            return r.status, await r.text()

    async def close(self) -> None:
        await self.http.close()


async def pinned_to(node: Node, worker: str) -> Pinned:
    """A connection the kernel gave to `worker` (new connections until one is)."""
    for _ in range(60):
        pinned = Pinned(node)
        if await pinned.worker() == worker:
            return pinned
        await pinned.close()
    raise AssertionError(f"no connection landed on {worker}")


@pytest.fixture
async def two_workers(tmp_path: Path, redis_url: str) -> AsyncIterator[Node]:
    async with started(tmp_path, redis_url, "w", workers=2, DROPROOM_WHEP_PER_PROCESS="1") as node:
        try:
            yield node
        finally:
            print(*node.lines[-60:], sep="\n")


async def test_a_full_worker_hands_the_listener_to_the_other_and_429_when_both_are_full(
    two_workers: Node,
) -> None:
    node = two_workers
    await create_room(node)
    offer = await abandoned_offer()
    token = node.token("lenny", Role.LISTENER)
    first = await pinned_to(node, "w1")
    assert (await first.whep(token, offer))[0] == 201  # w1 is full (a cap of 1)
    await asyncio.sleep(2.5)  # its count reaches the node's other worker
    second = await pinned_to(node, "w1")
    assert (await second.whep(token, offer))[0] == 201  # taken by w2
    await asyncio.sleep(2.5)
    third = await pinned_to(node, "w2")
    status, body = await third.whep(token, offer)
    assert status == 429 and "rate_limited" in body
    for pinned in (first, second, third):
        await pinned.close()


async def test_a_speaker_listening_on_another_worker_hears_the_owner_mix_without_themselves(
    two_workers: Node, redis_url: str
) -> None:
    node = two_workers
    await create_room(node)
    publisher = await publish(node, 440)
    await lease_token(redis_url)
    redis = redis_client(redis_url)
    endpoint = json.loads(await redis.hget(keys.media_lease(ROOM), "endpoint") or "{}")
    await redis.aclose()
    other = "w2" if endpoint["worker"] == "w1" else "w1"
    pinned = await pinned_to(node, other)
    token = node.token("hostess", Role.HOST)

    async def exchange(offer: str) -> str:
        status, answer = await pinned.whep(token, offer)
        assert status == 201, answer
        return answer

    speaker = await AudioListener.start(exchange)
    listener = await listen(node, "lenny")  # anyone else hears the speaker
    await wait_connected(speaker.pc)
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(1.5)
    assert band_energy(listener.audio_since(t0), 440) > 0.8
    # served by the owner (silence: the mix minus themselves), not an echo from an edge
    assert speaker.rate(t0, loop.time()) > 40
    assert band_energy(speaker.audio_since(t0), 440) < 0.05
    for peer in (publisher, speaker, listener):
        await peer.close()
    await pinned.close()
