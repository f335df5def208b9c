"""`RoomRelay`: python-socketio's client manager for several processes, which
sends each emit only to the processes holding clients of its room.

python-socketio's `AsyncRedisManager` publishes every emit on one channel
that every process decodes. Here an emit goes to the Redis channel of the
droproom room it concerns (`channels.publish_channel`), and a process is
subscribed to a room's channel from its first local member of any of the
room's Socket.IO rooms until its last leaves. Sid-targeted messages
(emits, disconnects, room changes, acks) go to the channel of the process
holding the sid: its sids carry its host id (`<host id>.<engine.io id>`).
Broadcasts to everyone go to one channel every process hears.

As in python-socketio, an emit is delivered here first and then published;
a process drops what it published itself undecoded (its host id prefixes
every message, server/relay/wire.py). Membership is per
process; the truth about a room lives in our Redis store.
"""

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

from bidict import ValueDuplicationError
from redis.exceptions import RedisError
from socketio import AsyncManager

from server.relay import channels, wire
from server.relay.transport import Transport

logger = logging.getLogger(__name__)

# How long a join waits for Redis to confirm its room's subscription before
# going on anyway (events published meanwhile would be missed; logged).
SUBSCRIBE_WAIT_S = 5.0
# Messages published; received and decoded; received and dropped undecoded
# because this process published them (it acted on them already).
PUBLISHED, RECEIVED, OWN = "published", "received", "own"

CountHook = Callable[[str], None]
Handler = Callable[["RoomRelay", wire.Message], Any]


class RoomRelay(AsyncManager):
    name = "droproom-relay"

    def __init__(self, transport: Transport, on_count: CountHook | None = None) -> None:
        super().__init__()
        self.transport = transport
        self.host_id = secrets.token_hex(channels.HOST_ID_LENGTH // 2)
        self.counts: Counter[str] = Counter()  # PUBLISHED / RECEIVED messages
        self._on_count = on_count
        self._members: dict[str, int] = {}  # channel -> local Socket.IO rooms on it
        self._ready: dict[str, asyncio.Future[None]] = {}  # channel -> its subscription
        self._open = False

    # -- lifecycle (server.app's relay_ctx) --

    async def open(self) -> None:
        # Looked up per message: a test may listen in on what this process decodes.
        await self.transport.open(lambda raw: self._deliver(raw))
        self._open = True
        for channel in (channels.host_channel(self.host_id), channels.ALL):
            self._members[channel] = self._members.get(channel, 0) + 1  # held for good
        for channel in list(self._members):
            self._ready[channel] = self.transport.subscribe(channel)
        await asyncio.wait(list(self._ready.values()), timeout=SUBSCRIBE_WAIT_S)

    async def close(self) -> None:
        self._open = False
        await self.transport.close()

    @property
    def channels(self) -> frozenset[str]:
        """The Redis channels this process listens on."""
        return frozenset(self._members)

    # -- membership: the channels follow the local Socket.IO rooms --

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        is_new = room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = channels.member_channel(room) if is_new and room is not None else None
        if channel is not None:
            self._hold(channel)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        existed = room in self.rooms.get(namespace, {})
        super().basic_leave_room(sid, namespace, room)
        if existed and room is not None and room not in self.rooms.get(namespace, {}):
            channel = channels.member_channel(room)
            if channel is not None:
                self._release(channel)

    def _hold(self, channel: str) -> None:
        self._members[channel] = self._members.get(channel, 0) + 1
        if self._members[channel] == 1 and self._open:
            self._ready[channel] = self.transport.subscribe(channel)

    def _release(self, channel: str) -> None:
        self._members[channel] -= 1
        if self._members[channel] == 0:
            del self._members[channel]
            self._ready.pop(channel, None)
            if self._open:
                self.transport.unsubscribe(channel)

    async def _until_subscribed(self, room: str) -> None:
        channel = channels.member_channel(room)
        ready = self._ready.get(channel) if channel is not None else None
        if ready is None or ready.done():
            return
        await asyncio.wait([ready], timeout=SUBSCRIBE_WAIT_S)
        if not ready.done():
            logger.warning("relay: %s not confirmed in %.0f s", channel, SUBSCRIBE_WAIT_S)

    # -- sids carry the host id --

    async def pre_connect(self, eio_sid: str, namespace: str) -> str | None:
        """python-socketio's `pre_connect`, with a sid naming this process."""
        sid = f"{self.host_id}{channels.SID_SEPARATOR}{self.server.eio.generate_id()}"
        try:
            self.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)
        except ValueDuplicationError:
            return None  # already connected
        self.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)
        self.pending_connect.setdefault(namespace, []).append(sid)
        return sid

    def _is_here(self, sid: str, namespace: str) -> bool:
        return bool(self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace))

    # -- the manager interface --

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        namespace = namespace or "/"
        here_only = isinstance(room, str) and self.is_sid_room(namespace, room)
        if kwargs.get("ignore_queue") or here_only:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback
            )
            return
        ack = None
        if callback is not None:
            if room is None:
                raise ValueError("Cannot use callback without a room set.")
            ack = [room, namespace, self._generate_ack_id(room, callback)]
        message = {
            "method": "emit",
            "event": event,
            "data": wire.pack_args(data),
            "namespace": namespace,
            "room": room,
            "skip_sid": skip_sid,
            "callback": ack,
            "host_id": self.host_id,
        }
        await self._handle_emit(message)
        await self._publish(self._channel_of(room), message)

    async def can_disconnect(self, sid: str, namespace: str) -> bool:
        if self._is_here(sid, namespace):
            return bool(await super().can_disconnect(sid, namespace))
        await self._to_host_of(sid, {"method": "disconnect", "sid": sid, "namespace": namespace})
        return False

    async def disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        if kwargs.get("ignore_queue") or self._is_here(sid, namespace):
            await super().disconnect(sid, namespace)
            return
        await self._to_host_of(sid, {"method": "disconnect", "sid": sid, "namespace": namespace})

    async def enter_room(
        self, sid: str, namespace: str, room: str, eio_sid: str | None = None
    ) -> None:
        if self._is_here(sid, namespace):
            await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
            await self._until_subscribed(room)
            return
        message = {"method": "enter_room", "sid": sid, "room": room, "namespace": namespace}
        await self._to_host_of(sid, message)

    async def leave_room(self, sid: str, namespace: str, room: str) -> None:
        if self._is_here(sid, namespace):
            await super().leave_room(sid, namespace, room)
            return
        message = {"method": "leave_room", "sid": sid, "room": room, "namespace": namespace}
        await self._to_host_of(sid, message)

    async def close_room(self, room: str, namespace: str | None = None) -> None:
        namespace = namespace or "/"
        await super().close_room(room, namespace)
        message = {"method": "close_room", "room": room, "namespace": namespace}
        await self._publish(self._channel_of(room), {**message, "host_id": self.host_id})

    # -- out --

    def _channel_of(self, room: Any) -> str:
        if room is None or isinstance(room, str):
            return channels.publish_channel(room)
        found = {channels.publish_channel(name) for name in room}
        return found.pop() if len(found) == 1 else channels.ALL

    async def _to_host_of(self, sid: str, message: wire.Message) -> None:
        host = channels.host_of_sid(sid)
        channel = channels.host_channel(host) if host is not None else channels.ALL
        await self._publish(channel, {**message, "host_id": self.host_id})

    async def _publish(self, channel: str, message: wire.Message) -> None:
        if not self._open:
            logger.warning("relay: closed, %s not sent to %s", message["method"], channel)
            return
        try:
            await self.transport.publish(channel, wire.encode(message, self.host_id))
        except (RedisError, OSError):
            logger.warning("relay: could not publish %s to %s", message["method"], channel)
            return
        self._count(PUBLISHED)

    def _count(self, direction: str) -> None:
        self.counts[direction] += 1
        if self._on_count is not None:
            self._on_count(direction)

    # -- in --

    async def _deliver(self, raw: bytes) -> None:
        if wire.sender(raw) == self.host_id:
            self._count(OWN)
            return
        self._count(RECEIVED)
        message = wire.decode(raw)
        if message is None:
            return
        method = message["method"]
        handler = _HANDLERS.get(method)
        if handler is None:
            return
        try:
            await handler(self, message)
        except Exception:
            logger.exception("relay: handling %s failed", method)

    async def _handle_emit(self, message: wire.Message) -> None:
        room, namespace = message.get("room"), message.get("namespace") or "/"
        if isinstance(room, str) and room not in self.rooms.get(namespace, {}):
            return  # nobody here: python-socketio would still encode the packet
        remote = message.get("callback")
        callback = None
        if remote is not None and len(remote) == 3:
            callback = partial(self._return_callback, str(message.get("host_id")), *remote)
        await super().emit(
            message["event"],
            wire.unpack_args(message["data"]),
            namespace,
            room=room,
            skip_sid=message.get("skip_sid"),
            callback=callback,
        )

    async def _return_callback(
        self, host_id: str, sid: str, namespace: str, callback_id: int, *args: Any
    ) -> None:
        if host_id == self.host_id:
            await self.trigger_callback(sid, callback_id, args)
            return
        message = {
            "method": "callback",
            "host_id": host_id,
            "sid": sid,
            "namespace": namespace,
            "id": callback_id,
            "args": list(args),
        }
        await self._publish(channels.host_channel(host_id), message)

    async def _handle_callback(self, message: wire.Message) -> None:
        if message.get("host_id") == self.host_id:
            await self.trigger_callback(message["sid"], message["id"], message["args"])

    async def _handle_disconnect(self, message: wire.Message) -> None:
        await self.server.disconnect(
            sid=message["sid"], namespace=message.get("namespace"), ignore_queue=True
        )

    async def _handle_enter_room(self, message: wire.Message) -> None:
        sid, namespace = message["sid"], message.get("namespace") or "/"
        if self._is_here(sid, namespace):
            await super().enter_room(sid, namespace, message["room"])
            await self._until_subscribed(message["room"])

    async def _handle_leave_room(self, message: wire.Message) -> None:
        sid, namespace = message["sid"], message.get("namespace") or "/"
        if self._is_here(sid, namespace):
            await super().leave_room(sid, namespace, message["room"])

    async def _handle_close_room(self, message: wire.Message) -> None:
        await super().close_room(message["room"], message.get("namespace") or "/")


_HANDLERS: dict[str, Handler] = {
    "emit": RoomRelay._handle_emit,
    "callback": RoomRelay._handle_callback,
    "disconnect": RoomRelay._handle_disconnect,
    "enter_room": RoomRelay._handle_enter_room,
    "leave_room": RoomRelay._handle_leave_room,
    "close_room": RoomRelay._handle_close_room,
}
