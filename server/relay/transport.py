"""Redis pub/sub for the relay: publish bytes on a channel; subscribe and
unsubscribe channels one at a time, in the order asked, each subscription
awaitable until Redis confirmed it (from then on nothing published to it is
missed); every message received handed to one callback.

`PlainTransport`: one Redis, PUBLISH/SUBSCRIBE on one connection.
`ShardedTransport`: a Redis 7 Cluster, SPUBLISH/SSUBSCRIBE: a message goes only
to the shard owning its channel's slot, and a process holds one subscribing
connection per shard it listens on (classic pub/sub on a Cluster copies
every message to every node).
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import ConnectionPool, parse_url

from server import redis_client

logger = logging.getLogger(__name__)

Deliver = Callable[[bytes], Awaitable[None]]
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0


class Transport(Protocol):
    async def open(self, deliver: Deliver) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, channel: str, data: bytes) -> None: ...
    def subscribe(self, channel: str) -> "asyncio.Future[None]": ...
    def unsubscribe(self, channel: str) -> None: ...


class Line:
    """One subscribing connection: commands go out in the order asked (one
    sender task), confirmations resolve their waiters first come first
    served (Redis answers in order), messages go to `deliver`."""

    def __init__(self, client: aioredis.Redis, deliver: Deliver, *, sharded: bool) -> None:
        self.client = client
        self.pubsub = client.pubsub()
        self.deliver = deliver
        self.sharded = sharded
        self._commands: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._sender = asyncio.create_task(self._send())
        self._reader: asyncio.Task[None] | None = None

    def subscribe(self, channel: str) -> "asyncio.Future[None]":
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, deque()).append(waiter)
        self._commands.put_nowait((True, channel))
        return waiter

    def unsubscribe(self, channel: str) -> None:
        self._commands.put_nowait((False, channel))

    async def _send(self) -> None:
        while True:
            on, channel = await self._commands.get()
            try:
                await self._command(on, channel)
            except Exception:
                # The reader's reconnect subscribes again what the pubsub holds.
                logger.exception("relay: could not (un)subscribe %s", channel)
                if on:
                    self._settle(channel)
            if self._reader is None and self.pubsub.connection is not None:
                self._reader = asyncio.create_task(self._read())

    async def _command(self, on: bool, channel: str) -> None:
        if self.sharded:
            await (self.pubsub.ssubscribe(channel) if on else self.pubsub.sunsubscribe(channel))
        else:
            await (self.pubsub.subscribe(channel) if on else self.pubsub.unsubscribe(channel))

    def _settle(self, channel: str | bytes) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        waiters = self._waiters.get(name)
        if waiters:
            waiter = waiters.popleft()
            if not waiters:
                del self._waiters[name]
            if not waiter.done():
                waiter.set_result(None)

    async def _read(self) -> None:
        pause = RETRY_FIRST_S
        while True:
            try:
                # Not listen(): it ends whenever nothing is subscribed for a moment.
                message = await self.pubsub.get_message(timeout=None)
                if message is not None:
                    await self._take(message)
                pause = RETRY_FIRST_S
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("relay: pub/sub connection lost, again in %.1f s", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                with contextlib.suppress(Exception):
                    await self.pubsub.connect()  # subscribes again to what it held

    async def _take(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("message", "smessage"):
            await self.deliver(message["data"])
        elif kind in ("subscribe", "ssubscribe"):
            self._settle(message["channel"])

    async def close(self) -> None:
        for task in (self._sender, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        await self.pubsub.aclose()
        await self.client.aclose()


class PlainTransport:
    def __init__(self, url: str) -> None:
        self.url = url
        self._publisher: aioredis.Redis | None = None
        self._line: Line | None = None

    async def open(self, deliver: Deliver) -> None:
        self._publisher = redis_client.connect(self.url)
        self._line = Line(aioredis.Redis.from_url(self.url), deliver, sharded=False)

    async def close(self) -> None:
        if self._line is not None:
            await self._line.close()
        if self._publisher is not None:
            await self._publisher.aclose()

    async def publish(self, channel: str, data: bytes) -> None:
        assert self._publisher is not None, "open() first"
        await self._publisher.publish(channel, data)

    def subscribe(self, channel: str) -> "asyncio.Future[None]":
        assert self._line is not None, "open() first"
        return self._line.subscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        assert self._line is not None, "open() first"
        self._line.unsubscribe(channel)


class ShardedTransport:
    """One `Line` per shard this process listens on, opened on first need."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._cluster: RedisCluster | None = None
        self._deliver: Deliver | None = None
        self._lines: dict[str, Line] = {}  # node name -> its line
        self._line_of: dict[str, Line] = {}  # channel -> the line it was subscribed on

    async def open(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._cluster = await redis_client.open_client(self.url, cluster=True)  # type: ignore[assignment]

    async def close(self) -> None:
        for line in self._lines.values():
            await line.close()
        if self._cluster is not None:
            await self._cluster.aclose()

    async def publish(self, channel: str, data: bytes) -> None:
        assert self._cluster is not None, "open() first"
        await self._cluster.spublish(channel, data)

    def subscribe(self, channel: str) -> "asyncio.Future[None]":
        line = self._line_for(channel)
        self._line_of[channel] = line
        return line.subscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        line = self._line_of.pop(channel, None)
        if line is not None:
            line.unsubscribe(channel)

    def _line_for(self, channel: str) -> Line:
        assert self._cluster is not None and self._deliver is not None, "open() first"
        node = self._cluster.get_node_from_key(channel)
        if node is None:
            raise RuntimeError(f"no cluster node owns the channel {channel}")
        line = self._lines.get(node.name)
        if line is None:
            kwargs: dict[str, Any] = {**parse_url(self.url), "host": node.host, "port": node.port}
            client = aioredis.Redis(connection_pool=ConnectionPool(**kwargs))
            line = self._lines[node.name] = Line(client, self._deliver, sharded=True)
        return line


def transport_for(url: str, *, cluster: bool) -> Transport:
    return ShardedTransport(url) if cluster else PlainTransport(url)
