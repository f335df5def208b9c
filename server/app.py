"""The application factory: settings in, a ready `web.Application` out.

Every long-lived resource is opened and closed as a pair in `cleanup_ctx`,
in this order (closed in reverse): Redis, the rooms' presence machinery,
each feature's resources, and last the scheduler, so jobs start after
everything they use is open and stop before it closes.

Shutting down (SIGTERM) is quick by design: `droproom serve` stops listening,
then `close_connections` ends every Socket.IO connection (their leave runs
while Redis is still open) and stops the scheduler, then aiohttp drains the
remaining requests for at most `DRAIN_S` and the resources close. (aiohttp
stops reading from every connection once its own shutdown starts, so the
websockets must be closed before it; `on_shutdown` repeats it for runners
that skip the first step.)
"""

import asyncio
import logging
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from rooms.store import RoomStore
from server import (
    accounts,
    audio,
    client_address,
    files,
    health,
    hooks,
    invites,
    migrations,
    numbers,
    redis_client,
    rooms,
    shop,
    tones,
)
from server import web as web_pages
from server.appkeys import (
    DISPATCHER,
    EMITTER,
    HANDOFF,
    REDIS,
    ROOMS,
    SCHEDULER,
    SETTINGS,
    SIO,
    SNAPSHOT_PARTS,
    STAGE_LISTENERS,
)
from server.config import Settings
from server.dispatch import Dispatcher
from server.embedded import datadir
from server.embedded.redis_embed import EmbeddedRedis
from server.emitter import Emitter
from server.errors import OUTAGE, error_middleware
from server.handoff import Handoff, name_sessions
from server.metrics import METRICS, Metrics, count_requests
from server.outage import StoreOutage
from server.relay.manager import RoomRelay
from server.relay.transport import transport_for
from server.rooms.demo import SEEDERS
from server.scheduler import Scheduler
from server.sio_transport import OpenSockets, use_plain_websockets
from server.workers import worker_socket

logger = logging.getLogger(__name__)

MAX_SOCKET_MESSAGE = 64 * 1024
# How long in-flight HTTP requests get to finish after SIGTERM, and how long
# closing the Socket.IO connections may take: a container's grace is 30 s.
DRAIN_S = 3.0
CLOSE_CONNECTIONS_S = 5.0
OPEN_SOCKETS: web.AppKey[OpenSockets] = web.AppKey("open_sockets", OpenSockets)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded = (
        None
        if settings.redis_url
        else EmbeddedRedis(settings.data_dir, restart_backoff_s=settings.restart_backoff_s)
    )
    url = settings.redis_url or await embedded.start()  # type: ignore[union-attr]
    app[REDIS] = await redis_client.open_client(url, cluster=settings.redis_cluster)
    # The data is brought to the current key layout before anything uses it.
    await migrations.run(app[REDIS], app[SCHEDULER].clock())
    rooms_redis = await redis_client.open_client(
        url, cluster=settings.redis_cluster, decode_responses=True
    )
    app[ROOMS] = RoomStore(rooms_redis)
    yield
    await app[OUTAGE].aclose()
    await rooms_redis.aclose()
    await app[REDIS].aclose()
    if embedded is not None:
        await embedded.stop()


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SCHEDULER].start()
    yield
    await app[SCHEDULER].stop()


async def close_connections(app: web.Application, wait_s: float = CLOSE_CONNECTIONS_S) -> None:
    """First step of a shutdown: nobody is left waiting on a socket nobody
    answers, and no job acts on state after its owner stopped listening."""
    eio = app[SIO].eio
    sockets = list(eio.sockets.values())
    count = len(sockets)
    if count:
        reason = eio.reason.SERVER_DISCONNECT
        try:
            # Runs each connection's disconnect handler and queues engine.io's
            # CLOSE; not waiting on the queue (a socket whose writer is already
            # gone would never drain it).
            async with asyncio.timeout(CLOSE_CONNECTIONS_S):
                for socket in sockets:
                    await socket.close(wait=False, reason=reason)
        except TimeoutError:
            logger.warning("closing %d Socket.IO connections timed out", count)
        left = await app[OPEN_SOCKETS].wait_closed(wait_s) if wait_s else 0
        logger.info("closed %d Socket.IO connections (%d did not answer)", count, left)
    await app[SCHEDULER].stop()


async def _on_shutdown(app: web.Application) -> None:
    # aiohttp reads nothing more by now: the clients' close frames cannot arrive.
    await close_connections(app, wait_s=0)


def _manager(settings: Settings, metrics: Metrics) -> socketio.AsyncManager | None:
    if not (settings.multi_node and settings.redis_url):
        return None
    if settings.sio_relay == "socketio":
        # The fallback: every process decodes every emit (docs/operations.md).
        return socketio.AsyncRedisManager(settings.redis_url)
    count = metrics.relay_messages
    return RoomRelay(
        transport_for(settings.redis_url, cluster=settings.redis_cluster),
        on_count=lambda direction: count.labels(direction).inc(),
    )


async def relay_ctx(app: web.Application) -> AsyncIterator[None]:
    """Room events between processes: listening before the first client."""
    manager = app[SIO].manager
    if not isinstance(manager, RoomRelay):
        yield
        return
    await manager.open()
    yield
    await manager.close()


def _socketio(settings: Settings, metrics: Metrics) -> socketio.AsyncServer:
    # Relays emits between server processes; the truth stays in our store.
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        client_manager=_manager(settings, metrics),
        max_http_buffer_size=MAX_SOCKET_MESSAGE,
        logger=False,
        engineio_logger=False,
    )
    return sio


def create_app(settings: Settings, *, worker_of_node: bool = False) -> web.Application:
    """`worker_of_node`: one of `serve --workers N` (its polling sessions
    named after it and handed to it by the other workers, server.handoff)."""
    datadir.secure(settings.data_dir)
    metrics = Metrics()
    middlewares = [count_requests, error_middleware]
    handoff = None
    if worker_of_node:

        def counted(outcome: str) -> None:
            metrics.handoffs.labels(outcome).inc()

        handoff = Handoff(settings.worker, lambda w: worker_socket(settings.data_dir, w), counted)
        middlewares.insert(1, handoff.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    sio = _socketio(settings, app[METRICS])
    if handoff is not None:
        app[HANDOFF] = handoff
        name_sessions(sio, settings.worker)

        async def close_handoff(_: web.Application) -> None:
            await handoff.aclose()

        app.on_cleanup.append(close_handoff)
    sio.attach(app)
    app[SIO] = sio
    app[OPEN_SOCKETS] = use_plain_websockets(sio)
    app[EMITTER] = Emitter(sio)
    app[DISPATCHER] = Dispatcher(app, sio)
    app[OUTAGE] = StoreOutage(lambda: app[REDIS].ping())
    app[SCHEDULER] = Scheduler(outage=app[OUTAGE])
    app[SNAPSHOT_PARTS] = []
    app[STAGE_LISTENERS] = []
    app[SEEDERS] = []
    client_address.setup(app)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(relay_ctx)
    health.setup(app)
    # Feature packages: each adds its routes, handlers, jobs and resources.
    files.setup(app)
    rooms.setup(app)
    audio.setup(app)
    web_pages.setup(app)
    shop.setup(app)
    accounts.setup(app)
    tones.setup(app)
    hooks.setup(app)
    invites.setup(app)
    numbers.setup(app)
    app.cleanup_ctx.append(scheduler_ctx)
    app.on_shutdown.append(_on_shutdown)
    return app
