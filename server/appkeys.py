"""Typed application state: every long-lived resource is one `web.AppKey`.

Each is opened and closed as a pair in a `cleanup_ctx` of `server.app`.
"""

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
import socketio
from aiohttp import web

if TYPE_CHECKING:
    from accounts.store import AccountStore
    from commerce.downloads import Downloads
    from commerce.storage import Storage
    from rooms.store import RoomStore
    from server.config import Settings
    from server.dispatch import Dispatcher
    from server.emitter import Emitter
    from server.handoff import Handoff
    from server.scheduler import Scheduler

# (room_id, identity) -> extra fields merged into the `room:state` snapshot
SnapshotPart = Callable[[str, str], Awaitable[dict[str, Any]]]
# (room_id, identity, on_stage, muted) -> None; told after every stage change
StageListener = Callable[[str, str, bool, bool], Awaitable[None]]

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)
SIO: web.AppKey[socketio.AsyncServer] = web.AppKey("sio", socketio.AsyncServer)
EMITTER: web.AppKey["Emitter"] = web.AppKey("emitter")
DISPATCHER: web.AppKey["Dispatcher"] = web.AppKey("dispatcher")
SCHEDULER: web.AppKey["Scheduler"] = web.AppKey("scheduler")
ROOMS: web.AppKey["RoomStore"] = web.AppKey("rooms")
ACCOUNTS: web.AppKey["AccountStore"] = web.AppKey("accounts")
SNAPSHOT_PARTS: web.AppKey[list[SnapshotPart]] = web.AppKey("snapshot_parts", list)
STAGE_LISTENERS: web.AppKey[list[StageListener]] = web.AppKey("stage_listeners", list)
STORAGE: web.AppKey["Storage"] = web.AppKey("storage")
DOWNLOADS: web.AppKey["Downloads"] = web.AppKey("downloads")
# the in-node handoff to other workers (`serve --workers N`); absent in a single process
HANDOFF: web.AppKey["Handoff"] = web.AppKey("handoff")
