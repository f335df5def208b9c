"""`droproom serve --workers 2`: two real worker processes on one port, the
embedded Redis and localstripe started once by their parent. Both workers
answer; room events, polling sessions and a drop rush work whichever worker
a client lands on; one scrape sees the whole node; a killed worker is
started again and its clients come back; SIGTERM stops everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from server import tokens
from server.appkeys import SCHEDULER
from server.handoff import owner_of
from server.leases import leased
from server.roles import Role
from tests.harness import (
    ADMIN_KEY,
    SECRET,
    Client,
    start_server,
    stop_server,
)
from tests.harness import test_settings as settings_for
from tests.serve_helpers import Served, clean_env, serving
from tests.test_js_client import WEB_CLIENT
from tests.test_js_client import node as node_binary

pytestmark = [pytest.mark.slow, pytest.mark.allow_blocking]
ROOM = "busy"
POLLING_SCRIPT = Path(__file__).resolve().parent / "js" / "polling_clients.mjs"


class Node(Served):
    def token(self, identity: str, role: Role = Role.LISTENER, room: str = ROOM) -> str:
        now = time.time()
        return tokens.mint(
            SECRET, room=room, identity=identity, role=role, name=identity, ttl_s=600, now=now
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
    return clean_env(DROPROOM_RESTART_BACKOFF_S="0.2")


LOW_OPEN_FILES = 256


def _low_open_files() -> None:
    """Started with a low soft limit, as many systems start services."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_OPEN_FILES, hard))


def _open_files(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-files limit")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with started(tmp_path) as served:
        yield served


@contextlib.asynccontextmanager
async def started(tmp_path: Path, *args: str) -> AsyncIterator[Node]:
    """`serve --workers 2` on a free port, stopped by its pid at the end."""
    async with serving(
        tmp_path / "data", *args, workers=2, env=_env(), kind=Node, preexec_fn=_low_open_files
    ) as served:
        yield served


async def _client(
    url: str,
    token: str,
    *,
    reconnect: bool = False,
    http_session: aiohttp.ClientSession | None = None,
    **kw: Any,
) -> Client:
    options: dict[str, Any] = {} if http_session is None else {"http_session": http_session}
    sio = socketio.AsyncClient(reconnection=reconnect, reconnection_delay=0.2, **options)
    client = Client(sio)

    async def catch_all(event: str, data: Any = None) -> None:
        client.record(event, data)

    async def connected() -> None:
        client.record("connect", sio.eio.sid)

    sio.on("*", catch_all)
    sio.on("connect", connected)
    kw.setdefault("transports", ["websocket"])
    await sio.connect(url, auth={"token": token}, wait_timeout=10, **kw)
    await client.wait_for("room:state", timeout=10)
    return client


def worker_of(client: Client) -> str:
    sid = client.sio.eio.sid or ""
    return sid.partition(".")[0]


async def _one_on(node: Node, worker: str, identity: str, role: Role, **kw: Any) -> Client:
    """A websocket client that landed on `worker` (the kernel picks; we retry)."""
    for _ in range(40):
        client = await _client(node.url, node.token(identity, role), **kw)
        if worker_of(client) == worker:
            return client
        await client.close()
    raise AssertionError(f"no connection landed on {worker}")


async def run_js(script: Path, env: dict[str, str]) -> dict[str, Any]:
    """The official JS client (Node) running `script`; its last JSON line."""
    process = await asyncio.create_subprocess_exec(
        node_binary(),
        str(script),
        env={**os.environ, **env, "WEB_CLIENT": str(WEB_CLIENT), "TIMEOUT_MS": "30000"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(40):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, (out.decode(), err.decode())
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def _handed(node: Node) -> float:
    """Polling requests handed to their session's worker, node-wide."""
    _, text = await node.request("GET", "/metrics")
    line = 'droproom_polling_handoffs_total{outcome="handed"}'
    found = [float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)]
    return sum(found)


def _poll_is(poll_id: str) -> Callable[[Any], bool]:
    return lambda d: bool(d["poll"]["id"] == poll_id)


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.1)


async def test_both_workers_answer_and_one_scrape_counts_them_all(node: Node) -> None:
    seen: Counter[str] = Counter()
    nodes = set()
    for _ in range(40):
        status, body = await node.request("GET", "/healthz")
        assert status == 200 and body["ok"] is True
        seen[body["worker"]] += 1
        nodes.add(body["node"])
    assert set(seen) == {"w1", "w2"}, seen
    assert len(nodes) == 1 and nodes.pop().endswith(node.url.rsplit(":", 1)[1])
    # One scrape, on whichever worker: the requests of both, summed.
    status, text = await node.request("GET", "/metrics")
    assert status == 200
    line = 'droproom_http_requests_total{method="GET",route="/healthz",status="200"}'
    counted = [float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)]
    assert counted == [40.0], counted


async def test_room_events_cross_workers_and_a_rush_never_oversells(node: Node) -> None:
    status, _ = await node.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "Busy"})
    assert status == 201
    mod1 = await _one_on(node, "w1", "mod1", Role.MODERATOR)
    mod2 = await _one_on(node, "w2", "mod2", Role.MODERATOR)
    fan1 = await _one_on(node, "w1", "fan1", Role.LISTENER)
    fan2 = await _one_on(node, "w2", "fan2", Role.LISTENER)
    clients = [mod1, mod2, fan1, fan2]
    try:
        for n, (mod, other) in enumerate(((mod1, fan2), (mod2, fan1))):
            answer = await mod.call("poll:create", {"question": f"Q{n}?", "options": ["a", "b"]})
            assert answer["ok"], answer
            poll_id = answer["poll"]["id"]
            await other.wait_for("poll:updated", _poll_is(poll_id))

        product = {"id": "cap", "title": "Cap", "price": 1200, "currency": "usd"}
        product["kind"] = "physical"
        status, _ = await node.request("POST", "/api/v1/products", json=product)
        assert status == 201
        now = time.time()
        schedule = {"product_id": "cap", "starts_at": now, "ends_at": now + 600}
        answer = await mod1.call("drop:schedule", schedule | {"stock": 10, "per_buyer_limit": 1})
        drop_id = answer["drop"]["id"]
        buyers = list(
            await asyncio.gather(*(_client(node.url, node.token(f"b{i}")) for i in range(50)))
        )
        clients += buyers
        assert {worker_of(b) for b in buyers} == {"w1", "w2"}
        answers = await asyncio.gather(
            *(b.call("cart:add", {"drop_id": drop_id, "qty": 1}, timeout=60) for b in buyers)
        )
        outcome = Counter("ok" if a["ok"] else a["error"]["code"] for a in answers)
        assert outcome == {"ok": 10, "sold_out": 40}

        # The open connections gauge: both workers' connections, in one scrape.
        # (until the clients `_one_on` closed have left, if any still are)
        async def all_counted() -> bool:
            _, text = await node.request("GET", "/metrics")
            return "droproom_connections 54.0" in text.splitlines()

        await _until(all_counted, 10)
        # Both workers' listeners hear that it sold out.
        for fan in (fan1, fan2):
            await fan.wait_for("drop:updated", lambda d: d["drop"]["remaining"] == 0, 10)
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_polling_clients_stay_connected_whichever_worker_they_reach(node: Node) -> None:
    status, _ = await node.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "Busy"})
    assert status == 201
    mod = await _client(node.url, node.token("mod", Role.MODERATOR))
    # A new connection per request, as behind a load balancer that does not
    # keep them: the kernel spreads them over the workers (kept-alive ones
    # can all stay on the worker of their session, and then nothing is handed).
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    polling = list(
        await asyncio.gather(
            *(
                _client(
                    node.url,
                    node.token(f"p{i}"),
                    transports=["polling"],
                    reconnect=True,
                    http_session=http,
                )
                for i in range(6)
            )
        )
    )
    try:
        for round_ in range(3):
            poll = await mod.call("poll:create", {"question": f"Q{round_}?", "options": ["a", "b"]})
            poll_id = poll["poll"]["id"]
            # Each polling client sends (a POST) and hears (a GET): on any worker.
            votes = await asyncio.gather(
                *(p.call("poll:vote", {"poll_id": poll_id, "option": 0}) for p in polling)
            )
            assert all(v["ok"] for v in votes), votes
            for p in polling:
                await p.wait_for("poll:updated", _poll_is(poll_id), 10)
        # Never dropped and connected again: the same session all along.
        assert [len(p.received("connect")) for p in polling] == [1] * 6
        assert all(p.sio.transport() == "polling" for p in polling)
        assert await _handed(node) > 0  # some requests did reach the other worker
    finally:
        await asyncio.gather(*(c.close() for c in [mod, *polling]))
        await http.close()


async def test_a_killed_worker_is_restarted_and_its_clients_come_back(node: Node) -> None:
    status, _ = await node.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "Busy"})
    assert status == 201
    fan = await _one_on(node, "w2", "fan", Role.LISTENER, reconnect=True)
    first = node.worker_pid("w2")
    os.kill(first, signal.SIGKILL)
    try:

        async def restarted() -> bool:
            return "worker w2 restarted" in node.log()

        await _until(restarted)
        assert node.worker_pid("w2") != first
        await fan.wait_for("connect", lambda sid: sid != fan.received("connect")[0], 30)
        assert len(fan.received("room:state")) >= 2  # a fresh snapshot on reconnecting
        seen = set()
        for _ in range(40):
            _, body = await node.request("GET", "/healthz")
            seen.add(body["worker"])
        assert seen == {"w1", "w2"}
    finally:
        await fan.close()


async def test_sigterm_stops_the_workers_then_redis_and_localstripe(node: Node) -> None:
    pids = [node.worker_pid("w1"), node.worker_pid("w2")]
    # each process raised its open-file limit to the hard limit
    for pid in [node.proc.pid, *pids]:
        soft, hard = _open_files(pid)
        assert soft == hard and soft != str(LOW_OPEN_FILES), (pid, soft, hard)
    redis_pid = int((node.data / "redis" / "redis.pid").read_text())
    node.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(node.proc.wait(), 60) == 0, node.log()
    await node.reader
    for pid in [*pids, redis_pid]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    log = node.log()
    stripe_stopped = re.search(r"localstripe pid \d+ stopped", log)
    assert stripe_stopped is not None, log
    assert log.index("worker w1 stopped") < stripe_stopped.start()
    assert log.index("worker w2 stopped") < stripe_stopped.start()
    assert stripe_stopped.start() < log.index("embedded redis stopped")


def _own_group() -> None:
    """A process group of its own, as a shell gives a command it runs."""
    os.setpgid(0, 0)


async def test_ctrl_c_in_the_terminal_stops_everything_in_order_without_errors(
    tmp_path: Path,
) -> None:
    """A terminal's Ctrl-C sends SIGINT to the whole foreground group: the
    embedded children must not take it as their own and die under the
    parent's supervisor (that logged an ERROR and restarted localstripe
    during shutdown)."""
    async with serving(
        tmp_path / "data", workers=2, env=_env(), kind=Node, preexec_fn=_own_group
    ) as node:
        os.killpg(node.proc.pid, signal.SIGINT)
        assert await asyncio.wait_for(node.proc.wait(), 60) == 0, node.log()
        await node.reader
    log = node.log()
    assert re.search(r"localstripe pid \d+ stopped", log), log
    assert "embedded redis stopped" in log, log
    assert not [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line], log


async def test_official_js_clients_held_to_polling_work_across_workers(node: Node) -> None:
    status, _ = await node.request("POST", "/api/v1/rooms", json={"id": ROOM, "title": "Busy"})
    assert status == 201
    mod = await _client(node.url, node.token("mod", Role.MODERATOR))
    try:
        polls = []
        for n in range(3):
            answer = await mod.call("poll:create", {"question": f"Q{n}?", "options": ["a", "b"]})
            polls.append(answer["poll"]["id"])
        env = {
            "DROPROOM_URL": node.url,
            "TOKENS": ",".join(node.token(f"js{i}") for i in range(6)),
            "POLL_IDS": ",".join(polls),
        }
        result = await run_js(POLLING_SCRIPT, env)
    finally:
        await mod.close()
    assert "error" not in result, result["error"]
    clients = result["clients"]
    assert [c["transport"] for c in clients] == ["polling"] * 6
    assert [c["rounds"] for c in clients] == [3] * 6
    # One session each, never dropped: every request reached the session's worker.
    assert [(len(c["sids"]), c["disconnects"]) for c in clients] == [(1, [])] * 6
    assert await _handed(node) > 0  # some requests did reach the other worker


async def test_a_leased_job_runs_in_one_process_and_moves_when_it_stops(
    tmp_path: Path, redis_url: str
) -> None:
    first = await start_server(settings_for(tmp_path / "a", redis_url))
    second = await start_server(settings_for(tmp_path / "b", redis_url))
    name = f"test:{secrets.token_hex(4)}"
    ran: list[str] = []
    try:
        for who, harness in (("first", first), ("second", second)):

            async def job(now: float, who: str = who) -> None:
                ran.append(who)

            harness.app[SCHEDULER].every(0.05, leased(harness.app, name, 0.05, job))

        async def turns(n: int) -> bool:
            return len(ran) >= n

        await _until(lambda: turns(20), 10)
        holder = ran[0]
        assert set(ran) == {holder}  # never both
        stopping, other = (first, "second") if holder == "first" else (second, "first")
        await stop_server(stopping)
        # Given up when its process stopped: taken over before the lease (10 s) ran out.
        count = len(ran)
        await _until(lambda: turns(count + 5), 8)
        assert ran[-1] == other and set(ran[count:]) == {other}
    finally:
        for harness in (first, second):
            with contextlib.suppress(Exception):
                await stop_server(harness)


async def test_workers_must_be_one_or_more(tmp_path: Path) -> None:
    for bad in ("0", "-2", "two"):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--workers",
            bad,
            "--data-dir",
            str(tmp_path),
            env=_env(),
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        assert proc.returncode == 2
        assert b"--workers: must be a whole number, 1 or more" in err
    assert not (tmp_path / "redis").exists()  # nothing was started


def test_only_a_worker_name_routes_a_polling_request() -> None:
    assert owner_of("w2.AbC-_12") == "w2"
    for sid in ("AbC-_12", "../../etc.AbC", "w2", "w2x.AbC", ".AbC", "w99999.AbC"):
        assert owner_of(sid) is None, sid


async def test_serve_demo_with_workers_seeds_once_and_its_links_open_the_room(
    tmp_path: Path,
) -> None:
    async with started(tmp_path, "--demo") as node:
        links = node.data / "demo-links.txt"
        assert node.log().count(f"written to {links}") == 1
        text = links.read_text()
        assert text.count("#token=") == 3
        host = re.search(r"host: +\S+#token=(\S+)", text)
        assert host is not None, text
        clients = [await _client(node.url, host.group(1))]
        try:
            while len({worker_of(c) for c in clients}) < 2 and len(clients) < 40:
                clients.append(await _client(node.url, host.group(1)))
            assert {worker_of(c) for c in clients} == {"w1", "w2"}
            states = [c.received("room:state")[0] for c in clients]
            assert {s["room"]["id"] for s in states} == {"demo"}
        finally:
            await asyncio.gather(*(c.close() for c in clients))
