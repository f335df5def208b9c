"""The shop's edge: Socket.IO handlers (`slot:*`, `drop:*`, `cart:*`,
`checkout:start`, `order:cancel`), the products and Stripe webhook routes, the scheduler
jobs (drop transitions, cart and hold expiry, reconciler, coalesced stock
broadcasts), the `slots`/`drops`/`cart` parts of `room:state`, and the
cleanup_ctx that opens the Stripe client (and the embedded localstripe when
no Stripe keys are set).

Handlers are thin: validate, call one commerce function, emit its events.
Must not import `stripe` (commerce.stripe_gateway does).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from commerce import catalog, checkout, drops, keys, slots
from commerce.carts import CartChange, parse_add, parse_line_id
from commerce.drop_store import drop_event
from commerce.inventory import Target
from commerce.orders import Order
from commerce.shop import Shop, ShopConfig
from commerce.stripe_gateway import StripeGateway
from kernel import validate
from kernel.errors import Invalid
from kernel.events import Event, to_identity
from rooms import limits
from server import demo
from server.appkeys import (
    DISPATCHER,
    EMITTER,
    REDIS,
    ROOMS,
    SCHEDULER,
    SETTINGS,
    SNAPSHOT_PARTS,
    SnapshotPart,
)
from server.config import Settings
from server.dispatch import Ctx
from server.errors import read_json
from server.http_auth import require_admin
from server.roles import Role
from server.stripe_embed import EmbeddedStripe

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/v1/stripe/webhook"
TICK_S = 0.2  # drop transitions are announced within this of their time
FLUSH_S = 0.25  # stock counts are broadcast at most this often per drop
SWEEP_S = 1.0
RECONCILE_S = 60.0


@dataclass
class StockBroadcast:
    """Drops and products whose stock moved since the last flush (per process)."""

    drops: set[tuple[str, str]] = field(default_factory=set)
    products: dict[str, set[str]] = field(default_factory=dict)

    def touch(self, room: str, changes: list[CartChange]) -> None:
        for change in changes:
            for move in change.moves:
                target = Target.from_line_id(room, move.line_id)
                if target is None or move.left < 0:
                    continue
                if target.drop_id:
                    self.drops.add((room, target.drop_id))
                else:
                    self.products.setdefault(room, set()).add(target.product_id)

    async def flush(self, shop: Shop, now: float) -> list[Event]:
        dirty_drops, self.drops = self.drops, set()
        dirty_products, self.products = self.products, {}
        events = [drop_event(await shop.drops.get(r, d), now) for r, d in dirty_drops]
        for room, product_ids in dirty_products.items():
            events += await shop.slots.showing(room, product_ids, now)
        return events


async def emit_coalesced(app: web.Application, events: list[Event]) -> None:
    """Emit what the money path returned, folding its `drop:updated` into the
    coalesced stock broadcast (a drop sees at most one per FLUSH_S, however
    many orders are paid or released meanwhile)."""
    rest: list[Event] = []
    for event in events:
        if event.name == "drop:updated":
            app[BROADCAST].drops.add((event.room, str(event.payload["drop"]["id"])))
        else:
            rest.append(event)
    await app[EMITTER].emit(rest)


SHOP: web.AppKey[Shop] = web.AppKey("shop", Shop)
STRIPE_EMBED: web.AppKey[EmbeddedStripe | None] = web.AppKey("stripe_embed")
BROADCAST: web.AppKey[StockBroadcast] = web.AppKey("shop_broadcast", StockBroadcast)


# ---- resources -------------------------------------------------------------


async def _gateway(app: web.Application, settings: Settings) -> StripeGateway:
    if settings.stripe_secret_key:
        if not settings.stripe_webhook_secret:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
        app[STRIPE_EMBED] = None
        return StripeGateway(
            settings.stripe_secret_key,
            settings.stripe_webhook_secret,
            settings.stripe_publishable_key or "",
            settings.stripe_api_base,
        )
    embedded = EmbeddedStripe(settings.data_dir)
    app[STRIPE_EMBED] = embedded
    found = await embedded.start()
    await embedded.register_webhook(settings.public_url + WEBHOOK_PATH)
    return StripeGateway(
        found.secret_key, found.webhook_secret, found.publishable_key, found.api_base
    )


def stripe_js_url(app: web.Application) -> str:
    embedded = app.get(STRIPE_EMBED)
    if embedded is not None:
        return embedded.keys.js_url
    return app[SETTINGS].stripe_js_url or "https://js.stripe.com/v3/"


async def shop_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    gateway = await _gateway(app, settings)
    config = ShopConfig(
        settings.cart_ttl_s,
        settings.checkout_hold_s,
        settings.reconcile_after_s,
        settings.checkout_decline_hold_s,
        settings.checkout_max_attempts,
    )
    app[SHOP] = Shop(app[REDIS], gateway, config)
    app[BROADCAST] = StockBroadcast()
    try:
        yield
    finally:
        await gateway.close()
        embedded = app.get(STRIPE_EMBED)
        if embedded is not None:
            await embedded.stop()


# ---- Socket.IO handlers ----------------------------------------------------


async def on_slot_pin(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    slot_no = slots.parse_slot(p)
    product_id = validate.ident(p, "product_id")
    note = validate.opt_text(p, "note", max_len=200)
    pinned, events = await ctx.app[SHOP].slots.pin(ctx.room, slot_no, product_id, note, ctx.now)
    await ctx.emit(events)
    return {"slot": pinned.as_dict()}


async def on_slot_unpin(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    await ctx.emit(await ctx.app[SHOP].slots.unpin(ctx.room, slots.parse_slot(p), ctx.now))
    return {}


async def on_drop_schedule(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    req = drops.parse_schedule(p, ctx.now)
    drop, events = await ctx.app[SHOP].drops.schedule(ctx.room, req, ctx.now)
    await ctx.emit(events)
    return {"drop": drop.as_dict(ctx.now)}


async def on_drop_restock(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    drop_id = validate.ident(p, "drop_id")
    add = validate.integer(p, "add", lo=1, hi=1_000_000)
    drop, events = await ctx.app[SHOP].drops.restock(ctx.room, drop_id, add, ctx.now)
    await ctx.emit(events)
    return {"drop": drop.as_dict(ctx.now)}


async def _cart_answer(ctx: Ctx, change: CartChange) -> dict[str, Any]:
    ctx.app[BROADCAST].touch(ctx.room, [change])
    cart = change.cart.as_dict()
    # The buyer's other tabs and devices follow the cart too.
    mine = to_identity(ctx.room, ctx.identity, "cart:updated", {"cart": cart})
    await ctx.emit([*change.events, mine])
    return {"cart": cart}


async def on_cart_add(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    req = parse_add(p)
    change = await ctx.app[SHOP].carts.add(ctx.room, ctx.identity, req, ctx.now)
    return await _cart_answer(ctx, change)


async def on_cart_remove(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    line_id = parse_line_id(p)
    change = await ctx.app[SHOP].carts.remove(ctx.room, ctx.identity, line_id, ctx.now)
    return await _cart_answer(ctx, change)


async def on_cart_get(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    return {"cart": (await ctx.app[SHOP].carts.get(ctx.room, ctx.identity)).as_dict()}


async def on_checkout_start(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    method = checkout.parse_payment_method(p)
    await limits.check(ctx.app[ROOMS], ctx.room, "checkout", ctx.identity)
    shop = ctx.app[SHOP]
    order, frozen = await shop.checkout.freeze(ctx.room, ctx.identity, ctx.now)
    await ctx.emit(frozen)  # the cart became an order, whatever happens next
    result = await shop.checkout.pay(order, method, ctx.now)
    told = any(e.name == "order:updated" for e in result.events)
    mine = [] if told else [_order_event(ctx, result.order)]
    await emit_coalesced(ctx.app, [*result.events, *mine])
    return result.answer(shop.gateway.publishable_key)


async def on_order_cancel(ctx: Ctx, p: Mapping[str, Any]) -> dict[str, Any]:
    order_id = validate.ident(p, "order_id")
    await limits.check(ctx.app[ROOMS], ctx.room, "checkout", ctx.identity)
    order, events = await ctx.app[SHOP].checkout.cancel(ctx.room, ctx.identity, order_id, ctx.now)
    await emit_coalesced(ctx.app, events)
    return {"order": order.as_dict()}


def _order_event(ctx: Ctx, order: Order) -> Event:
    return to_identity(ctx.room, ctx.identity, "order:updated", {"order": order.as_dict()})


# ---- HTTP routes -----------------------------------------------------------

routes = web.RouteTableDef()


@routes.post("/api/v1/products")
async def create_product(request: web.Request) -> web.Response:
    await require_admin(request)
    body = await read_json(request)
    product = await request.app[SHOP].catalog.create(catalog.parse_product(body))
    logger.info("product %s created", product.id)
    return web.json_response(product.as_dict(product.stock), status=201)


@routes.get("/api/v1/products/{id}")
async def get_product(request: web.Request) -> web.Response:
    product_id = validate.ident(request.match_info, "id")
    product, inv = await request.app[SHOP].catalog.get(product_id)
    return web.json_response(product.as_dict(inv.left if inv else None))


@routes.post(WEBHOOK_PATH)
async def stripe_webhook(request: web.Request) -> web.Response:
    payload = await request.read()
    signature = request.headers.get("Stripe-Signature", "")
    now = request.app[SCHEDULER].clock()
    try:
        events = await request.app[SHOP].webhooks.handle(payload, signature, now)
    except Invalid as exc:  # 400, never a traceback; a malformed event is logged once
        logger.info("stripe webhook refused (%d bytes): %s", len(payload), exc.message)
        raise
    await emit_coalesced(request.app, events)
    return web.json_response({"received": True})


# ---- scheduler jobs --------------------------------------------------------


async def _rooms(app: web.Application) -> list[str]:
    redis: Any = app[REDIS]  # redis-py types its async answers loosely
    return [r.decode() for r in await redis.smembers(keys.SHOP_ROOMS)]


def _jobs(app: web.Application) -> None:
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
    scheduler.every(SWEEP_S, expiry)
    scheduler.every(RECONCILE_S, reconcile)  # its first run is at start-up
    scheduler.every(FLUSH_S, flush)


# ---- room:state parts and the demo ----------------------------------------


def _snapshot(app: web.Application) -> SnapshotPart:
    async def part(room: str, identity: str) -> dict[str, Any]:
        shop, now = app[SHOP], app[SCHEDULER].clock()
        return {
            "slots": [s.as_dict() for s in await shop.slots.in_room(room)],
            "drops": [d.as_dict(now) for d in await shop.drops.in_room(room)],
            "cart": (await shop.carts.get(room, identity)).as_dict(),
            "orders": [o.as_dict() for o in await shop.orders.recent_of(room, identity)],
            "shop": {
                "publishable_key": shop.gateway.publishable_key,
                "stripe_js_url": stripe_js_url(app),
            },
        }

    return part


async def seed_demo(app: web.Application, room_was_created: bool) -> None:
    """Demo products, a pinned slot and a drop that goes live a minute from now."""
    if not room_was_created:
        return
    shop, now = app[SHOP], app[SCHEDULER].clock()
    samples = [
        {"id": "demo-hoodie", "title": "Tour hoodie", "price": 5500, "kind": "physical"},
        {"id": "demo-album", "title": "Live album (download)", "price": 900, "kind": "digital"},
        {"id": "demo-club", "title": "Fan club, 3 months", "price": 1500, "kind": "subscription"},
    ]
    for sample in samples:
        stock = {"stock": 100} if sample["kind"] == "physical" else {}
        product = catalog.parse_product({**sample, "currency": "eur", **stock})
        if await shop.catalog.find(product.id) is None:
            await shop.catalog.create(product)
    await shop.slots.pin(demo.DEMO_ROOM, 1, "demo-hoodie", "Signed by the band", now)
    req = drops.DropRequest("demo-hoodie", now + 60, now + 3600, 50, 1)
    await shop.drops.schedule(demo.DEMO_ROOM, req, now)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(shop_ctx)
    app.router.add_routes(routes)
    dispatcher = app[DISPATCHER]
    dispatcher.add("slot:pin", on_slot_pin, role=Role.MODERATOR, module="shop")
    dispatcher.add("slot:unpin", on_slot_unpin, role=Role.MODERATOR, module="shop")
    dispatcher.add("drop:schedule", on_drop_schedule, role=Role.MODERATOR, module="shop")
    dispatcher.add("drop:restock", on_drop_restock, role=Role.HOST, module="shop")
    dispatcher.add("cart:add", on_cart_add, role=Role.LISTENER, module="shop")
    dispatcher.add("cart:remove", on_cart_remove, role=Role.LISTENER, module="shop")
    dispatcher.add("cart:get", on_cart_get, role=Role.LISTENER, module="shop")
    dispatcher.add("checkout:start", on_checkout_start, role=Role.LISTENER, module="shop")
    dispatcher.add("order:cancel", on_order_cancel, role=Role.LISTENER, module="shop")
    app[SNAPSHOT_PARTS].append(_snapshot(app))
    app[demo.SEEDERS].append(seed_demo)
    _jobs(app)
