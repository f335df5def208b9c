"""Long-polling across the workers of one node (`serve --workers N`).

engine.io keeps a polling session in the process that made it, and the
kernel spreads a client's HTTP requests over the workers (SO_REUSEPORT
hashes each TCP connection; a long-poll GET and a POST use two). So each
worker names the sessions it makes (`w2.<random>`) and listens on a unix
socket of its own; a polling request for another worker's session is
handed to that worker over its socket, and its answer passed back as is.

A session whose worker is gone (it died; its socket is missing or refuses)
gets engine.io's own answer, 400 "Invalid session", so the official
clients connect again (to any worker). A websocket upgrade that lands on
another worker gets the same 400: the client's upgrade probe fails and it
keeps polling, which goes on working through the handoff.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import socketio
from aiohttp import web

logger = logging.getLogger(__name__)

SEP = "."
WORKER_NAME = re.compile(r"^w[0-9]{1,4}$")
# A long-poll waits up to engine.io's ping interval + timeout (25 s + 20 s).
POLL_TIMEOUT_S = 90.0
# Hop-by-hop, length and encoding headers: aiohttp sets its own (and the
# handed answer arrives decompressed).
_DROP = frozenset(
    {
        "connection",
        "content-length",
        "transfer-encoding",
        "keep-alive",
        "host",
        "accept-encoding",
        "content-encoding",
    }
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def name_sessions(sio: socketio.AsyncServer, worker: str) -> None:
    """Every engine.io session id this worker makes starts with its name."""
    eio = sio.eio
    make = eio.generate_id

    def generate_id() -> str:
        return f"{worker}{SEP}{make()}"

    eio.generate_id = generate_id


def owner_of(sid: str) -> str | None:
    owner, sep, _ = sid.partition(SEP)
    return owner if sep and WORKER_NAME.match(owner) else None


def _invalid_session(sid: str) -> web.Response:
    # engine.io's own answer for a session it does not know
    return web.Response(status=400, text=f"Invalid session {sid}", content_type="text/plain")


class Handoff:
    """The middleware, with one HTTP client per other worker's socket."""

    def __init__(
        self,
        worker: str,
        socket_of: Callable[[str], Path],
        counted: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.worker = worker
        self._socket_of = socket_of
        self._counted = counted  # "handed" or "gone", per request
        self._clients: dict[str, aiohttp.ClientSession] = {}

    def _client(self, owner: str) -> aiohttp.ClientSession:
        client = self._clients.get(owner)
        if client is None or client.closed:
            # no cap: each handed long-poll holds a connection for up to POLL_TIMEOUT_S
            connector = aiohttp.UnixConnector(path=str(self._socket_of(owner)), limit=0)
            timeout = aiohttp.ClientTimeout(total=POLL_TIMEOUT_S)
            client = aiohttp.ClientSession(connector=connector, timeout=timeout)
            self._clients[owner] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/socket.io/"):
            return await handler(request)
        query = request.query
        sid = query.get("sid", "")
        owner = owner_of(sid)
        if owner is None or owner == self.worker or query.get("transport") != "polling":
            return await handler(request)
        if not self._socket_of(owner).exists():
            self._counted("gone")
            return _invalid_session(sid)
        answer = await self.forward(owner, request)
        if answer is None:
            self._counted("gone")
            return _invalid_session(sid)
        self._counted("handed")
        return answer

    def has_worker(self, worker: str) -> bool:
        """Whether worker `worker` of this node is there to take a request."""
        return worker != self.worker and self._socket_of(worker).exists()

    async def forward(self, worker: str, request: web.Request) -> web.Response | None:
        """Hand `request` as it came to another worker of this node and pass its
        answer back as is; None when that worker is gone (its socket is missing
        or refuses). Any route may use it (polling here; WHIP/WHEP too)."""
        if not self._socket_of(worker).exists():
            return None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        body = await request.read()
        try:
            async with self._client(worker).request(
                request.method, f"http://{worker}{request.rel_url}", data=body, headers=headers
            ) as resp:
                answer = await resp.read()
                out = {k: v for k, v in resp.headers.items() if k.lower() not in _DROP}
                return web.Response(status=resp.status, body=answer, headers=out)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            what = f"{request.method} {request.path}"
            logger.info("handoff of %s to worker %s failed: %r", what, worker, exc)
            return None
