"""A bare python-socketio server (aiohttp, defaults) doing droproom's
broadcast: every connection joins one room; a controller's `bench:go` makes
the server emit a poll-shaped `poll:updated` with `server_time` to it.

Usage: python bench/bare_sio.py [--plain] PORT. `--plain` turns off the
websocket's permessage-deflate (which aiohttp negotiates with every client
that offers it, as the Node client does), as droproom does: the like-for-like
baseline. Prints "listening" when ready; exits on SIGTERM or when stdin closes.
"""

import asyncio
import os
import signal
import sys
import time
from typing import Any

import socketio
from aiohttp import web
from engineio.async_drivers import aiohttp as eio_aiohttp


class PlainWebSocket(eio_aiohttp.WebSocket):
    """engine.io's aiohttp websocket, without per-message compression."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        self._sock = web.WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(environ["aiohttp.request"])
        self.environ = environ
        await self.handler(self)
        return self._sock


def make_app(plain: bool) -> web.Application:
    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*")
    if plain:
        sio.eio._async = {**sio.eio._async, "websocket": PlainWebSocket}
    app = web.Application()
    sio.attach(app)

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not (isinstance(auth, dict) and auth.get("controller")):
            await sio.enter_room(sid, "all")

    async def go(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        votes = int(data["votes"])
        poll = {
            "id": "p1",
            "question": "Which one?",
            "options": ["a", "b"],
            "tallies": [votes, 0],
            "votes": votes,
            "state": "open",
            "closes_at": None,
            "created_at": 0,
        }
        await sio.emit("poll:updated", {"poll": poll, "server_time": time.time()}, room="all")
        return {"ok": True}

    sio.on("connect", connect)
    sio.on("bench:go", go)
    return app


async def main(port: int, plain: bool) -> None:
    runner = web.AppRunner(make_app(plain), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sys.stdout.write("listening\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def on_stdin() -> None:
        if not os.read(sys.stdin.fileno(), 1024):  # closed: our parent is gone
            stop.set()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[-1]), "--plain" in sys.argv))
