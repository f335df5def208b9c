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
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import ConnectionPool, parse_url
from redis.exceptions import RedisError

from server import redis_client

logger = logging.getLogger(__name__)

Deliver = Callable[[bytes], Awaitable[None]]
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
# how long closing waits for the line's sender and reader tasks to end
CLOSE_WAIT_S = 5.0


class Transport(Protocol):
    async def open(self, deliver: Deliver) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, channel: str, data: bytes) -> None: ...
    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None: ...
    def subscribe(self, channel: str) -> "asyncio.Future[None]": ...
    def unsubscribe(self, channel: str) -> None: ...


class Line:
    """One subscribing connection: commands go out in the order asked (one
    sender task), confirmations resolve their waiters first come first
    served (Redis answers in order), messages go to `deliver`."""

    def __init__(
        self,
        client: aioredis.Redis,
        deliver: Deliver,
        *,
        sharded: bool,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.pubsub = client.pubsub()
        if sharded:
            # On reconnect redis-py subscribes again to every shard channel in
            # one SSUBSCRIBE, which a node refuses (CROSSSLOT) for channels of
            # several slots: one by one instead (as its ClusterPubSub does).
            self.pubsub._resubscribe_shard_channels = self._resubscribe_each  # type: ignore[method-assign]
        self.deliver = deliver
        self.sharded = sharded
        self.on_lost = on_lost  # told of a channel Redis unsubscribed by itself
        self._commands: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._leaving: Counter[str] = Counter()  # unsubscribes asked, not yet confirmed
        self._sender = asyncio.create_task(self._send())
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    def subscribe(self, channel: str) -> "asyncio.Future[None]":
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, deque()).append(waiter)
        self._commands.put_nowait((True, channel))
        return waiter

    async def _resubscribe_each(self) -> None:
        for channel in list(self.pubsub.shard_channels):
            await self.pubsub.ssubscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        self._leaving[channel] += 1
        self._commands.put_nowait((False, channel))

    async def _send(self) -> None:
        while not self._closing:
            on, channel = await self._commands.get()
            await self._until_sent(on, channel)
            if self._reader is None and self.pubsub.connection is not None:
                self._reader = asyncio.create_task(self._read())

    async def _until_sent(self, on: bool, channel: str) -> None:
        """Again and again while Redis is away: the commands after it wait,
        so a channel's subscribe and unsubscribe keep their order."""
        pause = RETRY_FIRST_S
        while True:
            try:
                await self._command(on, channel)
                return
            except (RedisError, OSError):
                logger.warning("relay: (un)subscribe %s failed, again in %.1f s", channel, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)

    async def _command(self, on: bool, channel: str) -> None:
        if self.sharded:
            await (self.pubsub.ssubscribe(channel) if on else self.pubsub.sunsubscribe(channel))
        else:
            await (self.pubsub.subscribe(channel) if on else self.pubsub.unsubscribe(channel))

    def _settle(self, channel: str | bytes) -> None:
        name = _text(channel)
        waiters = self._waiters.get(name)
        if waiters:
            waiter = waiters.popleft()
            if not waiters:
                del self._waiters[name]
            if not waiter.done():
                waiter.set_result(None)

    async def _read(self) -> None:
        pause = RETRY_FIRST_S
        while not self._closing:
            try:
                # Not listen(): it ends whenever nothing is subscribed for a moment.
                message = await self.pubsub.get_message(timeout=None)
                if message is not None:
                    await self._take(message)
                pause = RETRY_FIRST_S
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closing:  # a cancel Python 3.11's timeout turned into an error
                    return
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
        elif kind in ("unsubscribe", "sunsubscribe"):
            self._left(_text(message["channel"]))

    def _left(self, channel: str) -> None:
        if self._leaving[channel] > 0:
            self._leaving[channel] -= 1
            if not self._leaving[channel]:
                del self._leaving[channel]
            return
        # Redis ended it: its slot moved to another shard (sharded pub/sub).
        self.pubsub.shard_channels.pop(channel.encode(), None)
        self.pubsub.shard_channels.pop(channel, None)
        logger.info("relay: Redis ended the subscription to %s", channel)
        if self.on_lost is not None:
            self.on_lost(channel)

    async def close(self) -> None:
        # The flag ends the loops even if a cancellation is lost: Python 3.11's
        # asyncio.timeout (inside redis-py) may turn a cancel that meets its
        # deadline into a TimeoutError, which the reader survives.
        self._closing = True
        tasks = [task for task in (self._sender, self._reader) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_WAIT_S)
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.cancel()
        await self.pubsub.aclose()
        await self.client.aclose()


T = TypeVar("T")


def _text(channel: str | bytes) -> str:
    return channel.decode() if isinstance(channel, bytes) else channel


def _opened(value: T | None) -> T:
    if value is None:
        raise RuntimeError("relay transport used before open()")
    return value


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
        await _opened(self._publisher).publish(channel, data)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """In order, in one round trip (a pipeline, not a transaction)."""
        async with _opened(self._publisher).pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.publish(channel, data)
            await pipe.execute()

    def subscribe(self, channel: str) -> "asyncio.Future[None]":
        return _opened(self._line).subscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        _opened(self._line).unsubscribe(channel)


class ShardedTransport:
    """One `Line` per shard this process listens on, opened on first need."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._cluster: RedisCluster | None = None
        self._deliver: Deliver | None = None
        self._lines: dict[str, Line] = {}  # node name -> its line
        self._line_of: dict[str, Line] = {}  # channel -> the line it was subscribed on
        self._moves: set[asyncio.Task[None]] = set()

    async def open(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._cluster = await redis_client.open_client(self.url, cluster=True)  # type: ignore[assignment]

    async def close(self) -> None:
        for line in self._lines.values():
            await line.close()
        if self._cluster is not None:
            await self._cluster.aclose()

    async def publish(self, channel: str, data: bytes) -> None:
        await _opened(self._cluster).spublish(channel, data)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """In order per channel, one round trip per shard (the cluster
        pipeline sends each SPUBLISH to its channel's slot owner)."""
        pipe = _opened(self._cluster).pipeline(transaction=False)
        for channel, data in messages:
            pipe.spublish(channel, data)
        await pipe.execute()

    def subscribe(self, channel: str) -> "asyncio.Future[None]":
        line = self._line_for(channel)
        self._line_of[channel] = line
        return line.subscribe(channel)

    def unsubscribe(self, channel: str) -> None:
        line = self._line_of.pop(channel, None)
        if line is not None:
            line.unsubscribe(channel)

    def _moved(self, channel: str) -> None:
        """A channel's slot went to another shard: subscribe on its new owner."""
        if channel in self._line_of:
            task = asyncio.create_task(self._follow(channel, self._line_of[channel]))
            self._moves.add(task)
            task.add_done_callback(self._moves.discard)

    async def _follow(self, channel: str, old: Line) -> None:
        cluster = _opened(self._cluster)
        await cluster.nodes_manager.initialize()  # the slots as they are now
        if self._line_of.get(channel) is not old:
            return  # unsubscribed meanwhile, or already followed
        self.subscribe(channel)

    def _line_for(self, channel: str) -> Line:
        cluster, deliver = _opened(self._cluster), _opened(self._deliver)
        node = cluster.get_node_from_key(channel)
        if node is None:
            raise RuntimeError(f"no cluster node owns the channel {channel}")
        line = self._lines.get(node.name)
        if line is None:
            kwargs: dict[str, Any] = {**parse_url(self.url), "host": node.host, "port": node.port}
            client = aioredis.Redis(connection_pool=ConnectionPool(**kwargs))
            line = Line(client, deliver, sharded=True, on_lost=self._moved)
            self._lines[node.name] = line
        return line


def transport_for(url: str, *, cluster: bool) -> Transport:
    return ShardedTransport(url) if cluster else PlainTransport(url)
