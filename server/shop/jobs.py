"""The shop's scheduler jobs: drop transitions, cart and hold expiry, the
reconciler, and the coalesced stock flush. Each gets `now` from the
scheduler's clock."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from commerce import keys
from server.appkeys import EMITTER, REDIS, SCHEDULER
from server.leases import leased
from server.shop.broadcast import BROADCAST, FLUSH_S, emit_coalesced
from server.shop.resources import SHOP

TICK_S = 0.2  # drop transitions are announced within this of their time
SWEEP_S = 1.0
RECONCILE_S = 60.0


async def _rooms(app: web.Application) -> list[str]:
    redis: Any = app[REDIS]  # redis-py types its async answers loosely
    return [r.decode() for r in await redis.smembers(keys.SHOP_ROOMS)]


def setup(app: web.Application) -> None:
    async def drop_transitions(now: float) -> None:
        for room in await _rooms(app):
            await app[EMITTER].emit(await app[SHOP].drops.tick(room, now))

    async def expiry(now: float) -> None:
        shop = app[SHOP]
        await shop.shares.resume(now)  # stock moves a dead process left half done
        for room in await _rooms(app):
            changes = await shop.carts.sweep(room, now)
            app[BROADCAST].touch(room, changes)
            await app[EMITTER].emit([e for c in changes for e in c.events])
            await emit_coalesced(app, await shop.settlement.expire_holds(room, now))

    async def reconcile(now: float) -> None:
        await emit_coalesced(app, await app[SHOP].reconciler.run(now))

    async def flush(now: float) -> None:
        await app[EMITTER].emit(await app[BROADCAST].flush(app[SHOP], now))

    scheduler = app[SCHEDULER]
    scheduler.every(TICK_S, drop_transitions)
    # Leased (one process of all workers and nodes): both ask Stripe about
    # orders, which N processes would do N times (the outcome is once anyway).
    scheduler.every(SWEEP_S, leased(app, "shop:expiry", SWEEP_S, expiry))
    scheduler.every(RECONCILE_S, leased(app, "shop:reconcile", RECONCILE_S, reconcile))
    scheduler.every(FLUSH_S, flush)
