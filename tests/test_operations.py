"""Operations: the server as a process, shut down with SIGTERM while people
are connected, run with the embedded Redis and localstripe dying under it,
its data dir private and its demo links kept out of its log."""

import asyncio
import os
import pty
import signal
import stat
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from server import tokens
from server.roles import Role
from tests.harness import ADMIN_KEY, SECRET, Client, connect, free_port


@dataclass
class Served:
    """`droproom serve` as a child process, its output collected."""

    proc: asyncio.subprocess.Process
    url: str
    data: Path
    lines: list[str]
    reader: "asyncio.Task[None]"

    def token(self, room: str, identity: str, role: Role = Role.LISTENER) -> str:
        return tokens.mint(
            SECRET,
            room=room,
            identity=identity,
            role=role,
            name=identity,
            ttl_s=600,
            now=time.time(),
        )

    async def request(
        self, method: str, path: str, *, admin: bool = False, **kwargs: object
    ) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"} if admin else {}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, headers=headers, **kwargs) as resp,  # type: ignore[arg-type]
        ):
            return resp.status, await resp.json(content_type=None)

    def log(self) -> str:
        return "\n".join(self.lines)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    env.update({"DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN_KEY, **extra})
    return env


async def serve(data: Path, *args: str, **env: str) -> Served:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--workers",
        "1",
        "--port",
        str(port),
        "--data-dir",
        str(data),
        *args,
        env=_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    listening = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode(errors="replace").rstrip())
            if b"listening on" in line:
                listening.set()

    reader = asyncio.create_task(read())
    async with asyncio.timeout(60):
        await listening.wait()
    return Served(proc, f"http://127.0.0.1:{port}", data, lines, reader)


async def stop(served: Served) -> int:
    if served.proc.returncode is None:
        served.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(served.proc.wait(), 60)
    await served.reader
    return code


async def test_sigterm_with_fifty_listeners_exits_in_seconds(tmp_path: Path) -> None:
    s = await serve(tmp_path / "data")
    room = {"id": "busy", "title": "Busy"}
    status, _ = await s.request("POST", "/api/v1/rooms", admin=True, json=room)
    assert status == 201
    clients: list[Client] = await asyncio.gather(
        *(connect(s.url, s.token("busy", f"fan-{i}")) for i in range(50))
    )
    await asyncio.gather(*(c.wait_for("room:state", timeout=30) for c in clients))
    started = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(s.proc.wait(), 60)
    took = time.monotonic() - started
    await s.reader
    print(f"SIGTERM with 50 socket.io clients: exited {code} in {took:.2f} s")
    print(
        "\n".join(line for line in s.lines if "Socket.IO connections" in line or "stopped" in line)
    )
    for c in clients:
        await c.close()
    assert code == 0, s.log()
    assert took < 20, f"shutdown took {took:.1f} s"
    # Every client was told: their connection ended with the server.
    assert not any(c.sio.connected for c in clients)


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.1)


async def _refusal(url: str, token: str) -> Any:
    sio = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    sio.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return refusals[0]["data"]


async def test_redis_killed_answers_503_logs_once_and_comes_back(tmp_path: Path) -> None:
    # The supervisor waits 3 s before its first restart: long enough to see the outage.
    s = await serve(tmp_path / "data", DROPROOM_RESTART_BACKOFF_S="3")
    try:
        room = {"id": "kept", "title": "Kept"}
        assert (await s.request("POST", "/api/v1/rooms", admin=True, json=room))[0] == 201
        await asyncio.sleep(1.2)  # the append-only file is synced every second
        redis_pid = int((s.data / "redis" / "redis.pid").read_text())
        fan = await connect(s.url, s.token("kept", "fan-before"))  # leaves during the outage
        await fan.wait_for("room:state")
        os.kill(redis_pid, signal.SIGKILL)
        await asyncio.sleep(0.1)
        await fan.close()
        status, body = await s.request("GET", "/api/v1/rooms")
        assert status == 503, body
        assert body["error"]["code"] == "unavailable"  # type: ignore[index]
        status, body = await s.request("POST", "/api/v1/rooms", admin=True, json={"title": "x"})
        assert status == 503, body
        for _ in range(3):  # people reconnecting meanwhile are told to retry
            assert (await _refusal(s.url, s.token("kept", "fan")))["code"] == "unavailable"
        await asyncio.sleep(1.5)  # the scheduler's jobs run many turns meanwhile

        async def back() -> bool:
            return (await s.request("GET", "/api/v1/rooms"))[0] == 200

        await _until(back)
        status, body = await s.request("GET", "/api/v1/rooms")
        assert [r["id"] for r in body["rooms"]] == ["kept"]  # type: ignore[index]
        await _until(lambda: _logged(s, "redis is back"))
    finally:
        await stop(s)
    log = s.log()
    assert log.count("redis unreachable") == 1, log
    assert log.count("redis is back") == 1, log
    assert "Traceback" not in log, log
    assert "embedded redis-server exited" in log and "embedded redis-server restarted" in log


async def _logged(s: Served, text: str) -> bool:
    return text in s.log()


async def test_localstripe_killed_is_restarted_with_our_webhook(tmp_path: Path) -> None:
    s = await serve(tmp_path / "data")
    try:
        line = next(x for x in s.lines if "localstripe pid" in x and "starting" in x)
        pid = int(line.split("localstripe pid ")[1].split()[0])
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: _logged(s, "localstripe restarted"))
        assert s.log().count("localstripe webhook ->") == 2  # registered again
        status, config = await s.request("GET", "/api/v1/config")
        assert status == 200
        async with aiohttp.ClientSession() as http:
            async with http.get(config["stripe_js_url"]) as resp:  # type: ignore[index]
                assert resp.status == 200
    finally:
        await stop(s)


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        if path.is_dir() or path.is_file():
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


async def test_the_data_dir_is_private_also_when_made_by_an_older_version(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "redis").mkdir(parents=True)
    data.chmod(0o755)
    (data / "redis").chmod(0o755)
    (data / "localstripe.pickle").write_bytes(b"")  # as an older version left them
    (data / "localstripe.pickle").chmod(0o644)
    (data / "secret").write_text("from-an-older-version-0123456789abcdef")
    (data / "secret").chmod(0o644)
    s = await serve(data, "--demo")  # the demo writes products and a drop
    try:
        conf = (data / "redis" / "redis.conf").read_text()
        assert "unixsocketperm 700" in conf
        socket_path = next(
            line.split()[1] for line in conf.splitlines() if line.startswith("unixsocket ")
        )
        assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o700
    finally:
        await stop(s)
    modes = _modes(data)
    assert {"redis/appendonly.aof", "redis/dump.rdb", "localstripe_webhook_secret"} <= set(modes), (
        modes
    )
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert wrong == {}


async def test_serve_demo_keeps_its_links_out_of_the_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = await serve(data, "--demo")
    try:
        await asyncio.sleep(0.3)
        assert "#token=" not in s.log()
        links = data / "demo-links.txt"
        assert f"written to {links}" in s.log()
        assert stat.S_IMODE(links.stat().st_mode) == 0o600
        text = links.read_text()
        assert text.count("#token=") == 3 and "host/demo#token=" in text
        # `droproom demo` beside the running server prints them on demand.
        demo = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "demo",
            "--data-dir",
            str(data),
            env=_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(demo.communicate(), 60)
        assert demo.returncode == 0 and out.decode().count("#token=") == 3
    finally:
        await stop(s)


async def test_serve_demo_prints_its_links_to_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--workers",
        "1",
        "--demo",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "data"),
        env=_env(),
        stdout=follower,
        stderr=asyncio.subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    try:
        async with asyncio.timeout(60):
            while b"listener:" not in seen:
                seen += await asyncio.to_thread(os.read, leader, 4096)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        os.close(leader)
    assert seen.count(b"#token=") >= 2
    assert not (tmp_path / "data" / "demo-links.txt").exists()
