"""Socket.IO's websocket transport without per-message compression, and the
set of open websockets (so a shutdown can wait for them to close).

aiohttp's `WebSocketResponse` negotiates permessage-deflate whenever a client
offers it (browsers and the Node client always do), and then deflates every
frame for every connection. A broadcast to thousands of listeners paid a
zlib compressor per listener per message: most of a broadcast's CPU for
payloads of a few hundred bytes. Our messages are small and latency-bound,
so the websocket is sent plain.
"""

import asyncio
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp


class OpenSockets:
    """The request tasks serving a websocket right now."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def add_current(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def wait_closed(self, timeout_s: float) -> int:
        """Wait until every websocket handler returned; how many did not."""
        if not self.tasks:
            return 0
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout_s)
        return len(pending)


class PlainWebSocket(eio_aiohttp.WebSocket):
    open_sockets: OpenSockets

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self.open_sockets.add_current()
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


def use_plain_websockets(sio: socketio.AsyncServer) -> OpenSockets:
    # engine.io picks its websocket class from this per-server table.
    open_sockets = OpenSockets()
    websocket = type("PlainWebSocket", (PlainWebSocket,), {"open_sockets": open_sockets})
    sio.eio._async = {**sio.eio._async, "websocket": websocket}
    return open_sockets
