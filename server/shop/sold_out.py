"""Keeps this process's sold-out drops (commerce.sold_out) true: every
`drop:updated` this process emits either suggests a drop is final (sold out
with nothing held, or ended: the cache reads it once) or says it has stock
(a restock, units held): then the drop is forgotten here and every other
process is told through Redis pub/sub. The cache answers only while the
subscription is up; when it drops, the cache forgets everything and stays
closed until it is back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from commerce.events import DROP_UPDATED
from commerce.sold_out import STOCK_BACK_CHANNEL, SoldOutDrops
from kernel.events import Event
from server.appkeys import EMITTER, REDIS, SCHEDULER
from server.shop.resources import SHOP

logger = logging.getLogger(__name__)

RETRY_S = 1.0  # a lost subscription is tried again this often
# how long shutdown waits for the stock-back listener to end
STOP_WAIT_S = 5.0
SETTLE_S = 2.0  # at shutdown, reads under way get this long


def _final_looking(drop: dict[str, Any]) -> bool:
    if drop.get("state") == "ended":
        return True
    return drop.get("state") == "sold_out" and drop.get("remaining") == 0 and drop.get("held") == 0


async def on_event(app: web.Application, event: Event) -> None:
    if event.name != DROP_UPDATED:
        return
    drop = event.payload.get("drop")
    if not isinstance(drop, dict) or not isinstance(drop.get("id"), str):
        return
    cache: SoldOutDrops = app[SHOP].sold_out
    if _final_looking(drop):
        cache.suspect(event.room, drop["id"], app[SCHEDULER].clock())
        return
    cache.stock_back(event.room, drop["id"])
    try:
        await app[REDIS].publish(STOCK_BACK_CHANNEL, json.dumps([event.room, drop["id"]]))
    except RedisError:
        # Redis unreachable: the other processes' subscriptions are lost too,
        # which closes their caches.
        logger.warning("room %s: could not tell others drop %s has stock", event.room, drop["id"])


async def _listen(app: web.Application, cache: SoldOutDrops) -> None:
    """Hear every process's `stock_back`; the cache is open only meanwhile."""
    while True:
        pubsub: Any = app[REDIS].pubsub()
        try:
            await pubsub.subscribe(STOCK_BACK_CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "subscribe":
                    cache.open()
                elif message["type"] == "message":
                    room, drop_id = json.loads(message["data"])
                    cache.stock_back(str(room), str(drop_id))
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError, ValueError) as exc:
            logger.info("sold-out drops: the stock-back channel was lost (%r)", exc)
        finally:
            cache.close()
            await pubsub.aclose()
        await asyncio.sleep(RETRY_S)


async def sold_out_ctx(app: web.Application) -> AsyncIterator[None]:
    cache = app[SHOP].sold_out
    task = asyncio.get_running_loop().create_task(_listen(app, cache))
    yield
    task.cancel()
    # bounded: Python 3.11's asyncio.timeout (inside redis-py) may turn the
    # cancel into a TimeoutError, which the listening loop survives
    _, pending = await asyncio.wait([task], timeout=STOP_WAIT_S)
    if pending:
        logger.warning("sold-out drops: the stock-back listener did not stop; abandoned")
    try:  # reads under way end before Redis closes
        await asyncio.wait_for(cache.settle(), SETTLE_S)
    except TimeoutError:
        logger.warning("sold-out drops: reads still under way at shutdown")


def setup(app: web.Application) -> None:
    async def listener(event: Event) -> None:
        await on_event(app, event)

    app[EMITTER].listeners.append(listener)
    app.cleanup_ctx.append(sold_out_ctx)  # after the shop's: it needs the Shop
