"""The business figures for Prometheus, on the app's registry (server.metrics):
orders by status, revenue and refunds by currency (minor units), drop
sell-outs, listeners in live rooms. Low-cardinality labels only: never a room,
product, drop or buyer id. The delivery latency histogram is issue 10's
`droproom_delivery_seconds`.

Each process counts what it decided (the order scripts tell it exactly once,
commerce.order_store.OrderStore.on_settled), so a sum over processes is the
whole; a drop's sell-out is counted by the first process that announces it
(a Redis set of the room's sold-out drops); the listeners gauge of a process
holds the rooms whose live numbers it computes (one process per room).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import Counter, Gauge

from commerce.events import DROP_UPDATED
from commerce.orders import Order, OrderStatus
from kernel.events import Event
from rooms import keys
from server.appkeys import EMITTER, ROOMS
from server.metrics import METRICS
from server.shop.resources import SHOP

STATUSES = ("paid", "failed", "refunded")


@dataclass
class BusinessMetrics:
    orders: Counter
    revenue: Counter
    refunds: Counter
    sellouts: Counter
    listeners: Gauge

    def settled(self, order: Order, outcome: str) -> None:
        if outcome not in STATUSES:
            return
        self.orders.labels(outcome).inc()
        currency = order.currency.upper()
        if outcome == "paid":
            self.revenue.labels(currency).inc(order.total)
        elif outcome == "refunded" and order.status is OrderStatus.PAID:
            self.refunds.labels(currency).inc(order.total)


def register(app: web.Application) -> BusinessMetrics:
    r = app[METRICS].registry
    m = BusinessMetrics(
        orders=Counter("droproom_orders", "Orders settled, by status", ["status"], registry=r),
        revenue=Counter(
            "droproom_revenue_minor",
            "Money taken by paid orders, in minor units, by currency",
            ["currency"],
            registry=r,
        ),
        refunds=Counter(
            "droproom_refunds_minor",
            "Money given back by refunds of paid orders, in minor units, by currency",
            ["currency"],
            registry=r,
        ),
        sellouts=Counter("droproom_drop_sellouts", "Drops that sold out", registry=r),
        listeners=Gauge(
            "droproom_listeners",
            "Listeners in the live rooms whose numbers this process computes",
            registry=r,
            multiprocess_mode="livesum",  # workers: summed over the node's processes
        ),
    )
    for status in STATUSES:  # every series exists from the start (rate() needs it)
        m.orders.labels(status)
    return m


BUSINESS: web.AppKey[BusinessMetrics] = web.AppKey("business_metrics", BusinessMetrics)


def setup(app: web.Application) -> None:
    business = app[BUSINESS] = register(app)

    async def sold_out(event: Event) -> None:
        drop = event.payload.get("drop") if event.name == DROP_UPDATED else None
        if not drop or drop.get("state") != "sold_out":
            return
        if await app[ROOMS].redis.sadd(keys.stats_sellouts(event.room), drop["id"]):
            business.sellouts.inc()

    async def told_of_orders(app: web.Application) -> AsyncIterator[None]:
        app[SHOP].orders.on_settled = business.settled  # the shop is open by now
        yield
        app[SHOP].orders.on_settled = None

    app[EMITTER].listeners.append(sold_out)
    app.cleanup_ctx.append(told_of_orders)
