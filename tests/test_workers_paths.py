"""The rooms and shop paths with `droproom serve --workers 2`: one node started
once for the module, real python-socketio clients placed on both workers (the
kernel picks a worker per connection; the engine.io sid's `wN.` prefix says
which, and a client is opened again until it lands where the test needs it).

Every test has people on both workers and asserts what each of them sees:
joining and chat, a poll created on one worker and voted on the other, a hand
raised and a stage invitation, a pinned slot, a drop rush that never
oversells, checkouts paid through localstripe (whose signed webhook reaches
whichever worker accepts its connection, so a buyer on the other worker hears
of it through the relay), a long-polling client whose requests reach both
workers, and the room's report."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio

from server import tokens
from server.roles import Role
from tests.harness import ADMIN_KEY, SECRET, Client, free_port
from tests.redis_cluster import RedisClusterNodes

pytestmark = [pytest.mark.slow, pytest.mark.allow_blocking]
WORKERS = {"w1", "w2"}
SHIP: dict[str, Any] = {
    "shipping": {
        "name": "Ada Buyer",
        "line1": "1 Rue de la Paix",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
    }
}


@dataclass
class Node:
    """`droproom serve --workers 2` on a free port, with its own data dir."""

    proc: subprocess.Popen[bytes]
    url: str
    lines: list[str] = field(default_factory=list)

    def log(self) -> str:
        return "\n".join(self.lines)

    def token(self, room: str, identity: str, role: Role = Role.LISTENER) -> str:
        return tokens.mint(
            SECRET,
            room=room,
            identity=identity,
            role=role,
            name=identity.title(),
            ttl_s=900,
            now=time.time(),
        )

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        # a new connection each time: the kernel picks a worker per connection
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
            http.request(method, self.url + path, headers=headers, **kwargs) as resp,
        ):
            if resp.content_type == "application/json":
                return resp.status, await resp.json()
            return resp.status, await resp.text()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN_KEY})
    return env


@pytest.fixture(scope="module")
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Node]:
    """One node for the module (starting one takes seconds); each test has its own room.
    Its own embedded Redis, or with `--redis-cluster` the test cluster."""
    port = free_port()
    data = tmp_path_factory.mktemp("workers-paths") / "data"
    command = [sys.executable, "-m", "server.cli", "serve", "--workers", "2"]
    command += ["--port", str(port), "--data-dir", str(data)]
    env = _env()
    if request.config.getoption("--redis-cluster"):
        nodes: RedisClusterNodes = request.getfixturevalue("redis_cluster")
        nodes.flushall()
        env.update({"REDIS_URL": nodes.url, "DROPROOM_REDIS_CLUSTER": "1"})
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    served = Node(proc, f"http://127.0.0.1:{port}")
    listening = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            served.lines.append(raw.decode(errors="replace").rstrip())
            if b"listening on" in raw:
                listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert listening.wait(90), served.log()
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(10)


class People:
    """The test's clients, each on a known worker; all closed at the end."""

    def __init__(self, node: Node, room: str) -> None:
        self.node = node
        self.room = room
        self.opened: list[Client] = []
        self.sessions: list[aiohttp.ClientSession] = []

    async def open(
        self, identity: str, role: Role = Role.LISTENER, *, polling: bool = False
    ) -> Client:
        http = None
        if polling:
            # A new TCP connection per request (as behind a proxy that does not
            # keep them alive): the kernel picks a worker for each, so a
            # session's requests reach both workers, not one pooled connection's.
            http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
            self.sessions.append(http)
        sio = socketio.AsyncClient(reconnection=False, http_session=http)
        client = Client(sio)

        async def catch_all(event: str, data: Any = None) -> None:
            client.record(event, data)

        sio.on("*", catch_all)
        transports = ["polling"] if polling else ["websocket"]
        token = self.node.token(self.room, identity, role)
        await sio.connect(
            self.node.url, auth={"token": token}, transports=transports, wait_timeout=10
        )
        self.opened.append(client)
        await client.wait_for("room:state", timeout=10)
        return client

    async def on(self, worker: str, identity: str, role: Role = Role.LISTENER) -> Client:
        """A websocket client of `identity` that landed on `worker`."""
        for _ in range(40):
            client = await self.open(identity, role)
            if worker_of(client) == worker:
                return client
            await self.drop(client)
        raise AssertionError(f"no connection landed on {worker}")

    async def drop(self, client: Client) -> None:
        self.opened.remove(client)
        await client.close()

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.opened))
        await asyncio.gather(*(http.close() for http in self.sessions))


def worker_of(client: Client) -> str:
    return (client.sio.eio.sid or "").partition(".")[0]


@contextlib.asynccontextmanager
async def room(node: Node, room_id: str) -> AsyncIterator[People]:
    status, body = await node.request(
        "POST", "/api/v1/rooms", json={"id": room_id, "title": room_id.title()}
    )
    assert status == 201, body
    people = People(node, room_id)
    try:
        yield people
    finally:
        await people.close()


async def _product(node: Node, product_id: str, price: int, **extra: Any) -> None:
    product = {"id": product_id, "title": product_id.title(), "price": price, "currency": "EUR"}
    product.update({"kind": "physical"} | extra)
    status, body = await node.request("POST", "/api/v1/products", json=product)
    assert status == 201, body


async def _drop(mod: Client, product_id: str, stock: int) -> str:
    now = time.time()
    payload = {"product_id": product_id, "starts_at": now - 1, "ends_at": now + 900}
    answer = await mod.call("drop:schedule", payload | {"stock": stock, "per_buyer_limit": 1})
    assert answer["ok"] and answer["drop"]["state"] == "live", answer
    return str(answer["drop"]["id"])


def _drop_is(drop_id: str, check: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
    return lambda d: d["drop"]["id"] == drop_id and check(d["drop"])


def _tally_is(poll_id: str, tallies: list[int]) -> Callable[[Any], bool]:
    return lambda d: bool(d["poll"]["id"] == poll_id and d["poll"]["tallies"] == tallies)


async def _handed(node: Node) -> float:
    """Polling requests handed to their session's worker, node-wide."""
    _, text = await node.request("GET", "/metrics")
    line = 'droproom_polling_handoffs_total{outcome="handed"}'
    return sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith(line))


async def test_joining_and_chat_are_seen_on_both_workers(node: Node) -> None:
    async with room(node, "chatroom") as people:
        host = await people.on("w1", "host", Role.HOST)
        ann = await people.on("w2", "ann")
        # The host (w1) sees Ann (w2) arrive.
        await host.wait_for("presence:updated", lambda d: d["counts"]["total"] == 2, 10)
        bob = await people.on("w1", "bob")
        await ann.wait_for("presence:updated", lambda d: d["counts"]["total"] == 3, 10)
        sent = await ann.call("chat:send", {"text": "hi from w2"})
        assert sent["ok"], sent
        for other in (host, bob):
            got = await other.wait_for("chat:message", timeout=10)
            assert got["message"]["id"] == sent["message"]["id"]
            assert got["message"]["text"] == "hi from w2"
        answer = await bob.call("chat:send", {"text": "and from w1"})
        heard = await ann.wait_for("chat:message", lambda d: d["message"]["text"] != "hi from w2")
        assert heard["message"]["id"] == answer["message"]["id"]
        # A late joiner, wherever it lands, gets both in its snapshot.
        late = await people.open("late")
        chat = late.received("room:state")[0]["chat"]
        assert [m["text"] for m in chat] == ["hi from w2", "and from w1"]
        await people.drop(bob)
        left = await ann.wait_for("presence:updated", lambda d: "bob" in d.get("left", []), 10)
        assert left["counts"]["total"] == 3  # host, ann, late


async def test_a_poll_made_on_one_worker_and_voted_on_the_other_shows_one_tally(
    node: Node,
) -> None:
    async with room(node, "pollroom") as people:
        mod = await people.on("w1", "mod", Role.MODERATOR)
        voters = [await people.on(w, f"v{i}{w}") for i in range(3) for w in ("w1", "w2")]
        answer = await mod.call("poll:create", {"question": "Encore?", "options": ["yes", "no"]})
        poll_id = answer["poll"]["id"]
        votes = await asyncio.gather(
            *(
                v.call("poll:vote", {"poll_id": poll_id, "option": n % 2})
                for n, v in enumerate(voters)
            )
        )
        assert all(v["ok"] for v in votes), votes

        def tallied(d: Any) -> bool:
            return bool(d["poll"]["id"] == poll_id and sum(d["poll"]["tallies"]) == 6)

        # Everyone, on both workers, ends with the same tally: 3 and 3.
        for watcher in (mod, *voters):
            seen = await watcher.wait_for("poll:updated", tallied, 10)
            assert seen["poll"]["tallies"] == [3, 3]
        # A voter on w2 changes its vote; the moderator on w1 sees 4 / 2.
        w2_voter = next(v for v in voters if worker_of(v) == "w2" and voters.index(v) % 2 == 1)
        assert (await w2_voter.call("poll:vote", {"poll_id": poll_id, "option": 0}))["ok"]
        await mod.wait_for("poll:updated", lambda d: d["poll"]["tallies"] == [4, 2], 10)


async def test_a_hand_raised_on_one_worker_is_invited_on_stage_from_the_other(
    node: Node,
) -> None:
    async with room(node, "stageroom") as people:
        mod = await people.on("w1", "mod", Role.MODERATOR)
        fan = await people.on("w2", "fan")
        bystander = await people.on("w1", "by")
        raised = await fan.call("hand:raise", {})
        assert raised["ok"], raised
        seen = await mod.wait_for("hand:updated", timeout=10)
        assert seen["participant"]["identity"] == "fan"
        assert seen["participant"]["hand_raised"] is True
        invited = await mod.call("stage:invite", {"identity": "fan"})
        assert invited["ok"], invited
        for watcher in (fan, bystander):
            stage = await watcher.wait_for("stage:updated", timeout=10)
            assert [p["identity"] for p in stage["stage"]] == ["fan"]
        # Only the invited listener (on the other worker) gets a speaker token.
        upgrade = await fan.wait_for("token:updated", timeout=10)
        assert upgrade["token"]
        assert not bystander.received("token:updated")
        removed = await mod.call("stage:remove", {"identity": "fan"})
        assert removed["ok"]
        gone = await fan.wait_for("stage:updated", lambda d: d["stage"] == [], 10)
        assert gone["participant"]["on_stage"] is False


async def test_a_pinned_slot_reaches_both_workers_and_late_joiners(node: Node) -> None:
    async with room(node, "slotroom") as people:
        await _product(node, "slot-tee", 2500)
        mod = await people.on("w2", "mod", Role.MODERATOR)
        fans = [await people.on("w1", "fan1"), await people.on("w2", "fan2")]
        pinned = await mod.call("slot:pin", {"slot": 1, "product_id": "slot-tee", "note": "signed"})
        assert pinned["ok"], pinned
        for fan in fans:
            seen = await fan.wait_for("slot:updated", timeout=10)
            assert seen["slot"]["product"]["id"] == "slot-tee"
            assert seen["slot"]["product"]["price"] == 2500 and seen["slot"]["note"] == "signed"
        for worker in sorted(WORKERS):
            late = await people.on(worker, f"late-{worker}")
            (slot,) = late.received("room:state")[0]["slots"]
            assert slot["product"]["id"] == "slot-tee"
        assert (await mod.call("slot:unpin", {"slot": 1}))["ok"]
        for fan in fans:
            await fan.wait_for("slot:updated", lambda d: d["slot"]["product"] is None, 10)


async def test_a_drop_rush_from_both_workers_never_oversells(node: Node) -> None:
    async with room(node, "rushroom") as people:
        await _product(node, "rush-cap", 1200)
        mod = await people.on("w1", "mod", Role.MODERATOR)
        watchers = [await people.on(w, f"watch-{w}") for w in sorted(WORKERS)]
        drop_id = await _drop(mod, "rush-cap", 15)
        buyers = list(await asyncio.gather(*(people.open(f"b{i}") for i in range(60))))
        placed = Counter(worker_of(b) for b in buyers)
        assert set(placed) == WORKERS, placed
        answers = await asyncio.gather(
            *(b.call("cart:add", {"drop_id": drop_id, "qty": 1}, timeout=60) for b in buyers)
        )
        # Every buyer gets one answer; exactly the stock is reserved.
        outcome = Counter("ok" if a["ok"] else a["error"]["code"] for a in answers)
        assert outcome == {"ok": 15, "sold_out": 45}, outcome
        winners = {worker_of(b) for b, a in zip(buyers, answers, strict=True) if a["ok"]}
        losers = {worker_of(b) for b, a in zip(buyers, answers, strict=True) if not a["ok"]}
        assert winners | losers == WORKERS
        for watcher in watchers:
            final = await watcher.wait_for(
                "drop:updated", _drop_is(drop_id, lambda d: d["remaining"] == 0), 10
            )
            drop = final["drop"]
            assert drop["remaining"] + drop["held"] + drop["sold"] == 15
            assert (drop["held"], drop["sold"]) == (15, 0)
        # A second try by a winner is refused by the per-buyer limit, whatever the worker.
        winner = next(b for b, a in zip(buyers, answers, strict=True) if a["ok"])
        again = await winner.call("cart:add", {"drop_id": drop_id, "qty": 1})
        assert not again["ok"] and again["error"]["code"] in {"sold_out", "limit_reached"}


async def test_checkouts_paid_through_localstripe_and_the_report(node: Node) -> None:
    """Buyers on both workers pay; localstripe's webhook reaches one worker per
    connection, so at least one buyer hears of its payment through the relay."""
    async with room(node, "payroom") as people:
        await _product(node, "pay-tee", 2500)
        mod = await people.on("w1", "mod", Role.MODERATOR)
        drop_id = await _drop(mod, "pay-tee", 4)
        buyers = [await people.on(w, f"buyer-{w}-{i}") for i in range(2) for w in ("w1", "w2")]
        watcher = await people.on("w2", "watcher")
        for buyer in buyers:
            assert (await buyer.call("cart:add", {"drop_id": drop_id, "qty": 1}))["ok"]
        answers = await asyncio.gather(
            *(
                b.call(
                    "checkout:start",
                    {**SHIP, "payment_method": "pm_card_visa", "email": f"b{n}@example.com"},
                    timeout=30,
                )
                for n, b in enumerate(buyers)
            )
        )
        for answer in answers:
            assert answer["ok"] and answer["status"] == "succeeded", answer
            assert answer["amount"] == 2500 and answer["currency"] == "eur"
        for buyer, answer in zip(buyers, answers, strict=True):
            paid = await buyer.wait_for(
                "order:updated", lambda d: d["order"]["status"] == "paid", 20
            )
            assert paid["order"]["id"] == answer["order_id"]
        final = await watcher.wait_for(
            "drop:updated", _drop_is(drop_id, lambda d: d["sold"] == 4), 10
        )
        assert (final["drop"]["remaining"], final["drop"]["held"]) == (0, 0)

        # The staff's order feed (w1) lists every paid order, from both workers.
        def feed_paid() -> set[str]:
            feed = mod.received("order:feed")
            return {f["order"]["id"] for f in feed if f["order"]["status"] == "paid"}

        async with asyncio.timeout(10):
            while feed_paid() != {a["order_id"] for a in answers}:
                await asyncio.sleep(0.1)
        # A buyer coming back on the other worker finds its paid order.
        first = buyers[0]
        other = "w2" if worker_of(first) == "w1" else "w1"
        back = await people.on(other, "buyer-w1-0")
        (order,) = back.received("room:state")[0]["orders"]
        assert order["id"] == answers[0]["order_id"] and order["status"] == "paid"
        # The report, from whichever worker answers, counts both workers' sales and people.
        for _ in range(2):
            status, rep = await node.request("GET", "/api/v1/rooms/payroom/report")
            assert status == 200, rep
            assert rep["orders"]["paid"] == 4
            assert rep["revenue"] == {"EUR": 10000}
            (drop,) = rep["drops"]
            assert (drop["stock"], drop["sold"], drop["sell_through"]) == (4, 4, 1.0)
            assert rep["listeners"]["unique"] == 5  # four buyers and the watcher
            assert rep["conversion"]["overall"] == round(4 / 5, 4)


async def test_a_long_polling_client_is_served_by_both_workers(node: Node) -> None:
    async with room(node, "pollingroom") as people:
        mod = await people.on("w1", "mod", Role.MODERATOR)
        ws = await people.on("w2", "ws")
        before = await _handed(node)
        polling = [await people.open(f"p{i}", polling=True) for i in range(3)]
        for round_ in range(3):
            poll = await mod.call("poll:create", {"question": f"Q{round_}?", "options": ["a", "b"]})
            poll_id = poll["poll"]["id"]
            votes = await asyncio.gather(
                *(p.call("poll:vote", {"poll_id": poll_id, "option": 0}) for p in polling)
            )
            assert all(v["ok"] for v in votes), votes
            for p in polling:
                await p.wait_for("poll:updated", _tally_is(poll_id, [3, 0]), 10)
        sent = await polling[0].call("chat:send", {"text": "over polling"})
        got = await ws.wait_for("chat:message", timeout=10)
        assert got["message"]["id"] == sent["message"]["id"]
        # Still the same sessions, still polling; some requests reached the other worker.
        assert all(p.sio.transport() == "polling" and p.sio.connected for p in polling)
        assert await _handed(node) > before


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_the_default_is_one_worker_per_core_the_server_may_use() -> None:
    """Pinned to one core (`taskset -c 0`, a cpuset), `serve` starts one worker."""
    code = (
        "from types import SimpleNamespace\n"
        "from server.workers import worker_count\n"
        "print(worker_count(None, SimpleNamespace(workers=0)))\n"
    )
    first = min(os.sched_getaffinity(0))
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {first}),
    )
    assert done.stdout.strip() == "1", done
