"""The webhooks' long-lived resources: the endpoint store and the delivery
queue, both on the rooms' text-mode Redis client (already open)."""

from collections.abc import AsyncIterator

from aiohttp import web

from accounts.hook_queue import HookQueue
from accounts.hook_store import HookStore
from server.appkeys import ROOMS

HOOKS: web.AppKey[HookStore] = web.AppKey("hooks", HookStore)
HOOK_QUEUE: web.AppKey[HookQueue] = web.AppKey("hook_queue", HookQueue)


async def hooks_ctx(app: web.Application) -> AsyncIterator[None]:
    app[HOOKS] = HookStore(app[ROOMS].redis)
    app[HOOK_QUEUE] = HookQueue(app[ROOMS].redis)
    yield
