"""Socket.IO's websocket transport without per-message compression.

aiohttp's `WebSocketResponse` negotiates permessage-deflate whenever a client
offers it (browsers and the Node client always do), and then deflates every
frame for every connection. A broadcast to thousands of listeners paid a
zlib compressor per listener per message: most of a broadcast's CPU for
payloads of a few hundred bytes. Our messages are small and latency-bound,
so the websocket is sent plain.
"""

from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp


class PlainWebSocket(eio_aiohttp.WebSocket):
    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        await self.handler(self)
        return self._sock


def use_plain_websockets(sio: socketio.AsyncServer) -> None:
    # engine.io picks its websocket class from this per-server table.
    sio.eio._async = {**sio.eio._async, "websocket": PlainWebSocket}
