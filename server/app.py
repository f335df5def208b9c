"""The application factory: settings in, a ready `web.Application` out.

Every long-lived resource is opened and closed as a pair in `cleanup_ctx`,
in this order (closed in reverse): Redis, the rooms' presence machinery,
each feature's resources, and last the scheduler, so jobs start after
everything they use is open and stop before it closes.
"""

import logging
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from rooms.store import RoomStore
from server import (
    connections,
    demo,
    http_routes,
    media_routes,
    migrations,
    redis_client,
    room_events,
    shop,
)
from server import web as web_pages
from server.appkeys import (
    DISPATCHER,
    EMITTER,
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
from server.emitter import Emitter
from server.errors import error_middleware
from server.metrics import METRICS, Metrics
from server.redis_embed import EmbeddedRedis
from server.scheduler import Scheduler
from server.sio_transport import use_plain_websockets

logger = logging.getLogger(__name__)

MAX_SOCKET_MESSAGE = 64 * 1024


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedded = None if settings.redis_url else EmbeddedRedis(settings.data_dir)
    url = settings.redis_url or await embedded.start()  # type: ignore[union-attr]
    app[REDIS] = redis_client.connect(url, cluster=settings.redis_cluster)
    # The data is brought to the current key layout before anything uses it.
    await migrations.run(app[REDIS], app[SCHEDULER].clock())
    rooms_redis = redis_client.connect(url, cluster=settings.redis_cluster, decode_responses=True)
    app[ROOMS] = RoomStore(rooms_redis)
    yield
    await rooms_redis.aclose()
    await app[REDIS].aclose()
    if embedded is not None:
        await embedded.stop()


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    app[SCHEDULER].start()
    yield
    await app[SCHEDULER].stop()


def _socketio(settings: Settings) -> socketio.AsyncServer:
    manager = None
    if settings.multi_node and settings.redis_url:
        # Relays emits between server processes; the truth stays in our store.
        manager = socketio.AsyncRedisManager(settings.redis_url)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        client_manager=manager,
        max_http_buffer_size=MAX_SOCKET_MESSAGE,
        logger=False,
        engineio_logger=False,
    )
    use_plain_websockets(sio)
    return sio


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    sio = _socketio(settings)
    sio.attach(app)
    app[SIO] = sio
    app[EMITTER] = Emitter(sio)
    app[DISPATCHER] = Dispatcher(app, sio)
    app[SCHEDULER] = Scheduler()
    app[SNAPSHOT_PARTS] = []
    app[STAGE_LISTENERS] = []
    app[demo.SEEDERS] = []
    app.cleanup_ctx.append(redis_ctx)
    connections.setup(app)
    room_events.setup(app)
    http_routes.setup(app)
    # Feature modules: each adds its routes, handlers and resources.
    media_routes.setup(app)
    web_pages.setup(app)
    shop.setup(app)
    app.cleanup_ctx.append(scheduler_ctx)
    return app
