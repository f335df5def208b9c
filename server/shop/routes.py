"""The shop's HTTP routes: products (created, edited and listed by the admin
or their creator, read by anyone) and the
Stripe webhook (raw body, signature checked by commerce, dispatched by type,
idempotent)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from commerce import catalog
from commerce.audio import product_updated
from commerce.product_edit import parse_edit
from kernel import validate
from kernel.errors import Invalid
from server.appkeys import EMITTER, SCHEDULER
from server.errors import read_json
from server.owners import listing_owner, require_actor
from server.shop.broadcast import emit_coalesced
from server.shop.owners import require_product_owner
from server.shop.resources import SHOP, WEBHOOK_PATH

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.post("/api/v1/products")
async def create_product(request: web.Request) -> web.Response:
    actor = await require_actor(request)
    body = await read_json(request)
    product = await request.app[SHOP].catalog.create(catalog.parse_product(body, actor.owner_id))
    logger.info("product %s created", product.id)
    return web.json_response(product.as_dict(product.stock), status=201)


@routes.get("/api/v1/products")
async def list_products(request: web.Request) -> web.Response:
    owner = await listing_owner(request)
    shop = request.app[SHOP]
    found = await (shop.catalog.every() if owner is None else shop.catalog.owned(owner))
    return web.json_response({"products": [await _wire(request, p.id) for p in found]})


async def _wire(request: web.Request, product_id: str) -> dict[str, Any]:
    product, inv = await request.app[SHOP].catalog.get(product_id)
    return product.as_dict(inv.left if inv else None)


@routes.patch("/api/v1/products/{id}")
async def edit_product(request: web.Request) -> web.Response:
    product_id = validate.ident(request.match_info, "id")
    await require_product_owner(request, product_id)
    body = await read_json(request)
    shop = request.app[SHOP]
    await shop.editor.apply(product_id, lambda product: parse_edit(body, product))
    wire = await _wire(request, product_id)
    rooms = await shop.catalog.rooms_showing(product_id)
    await request.app[EMITTER].emit(product_updated(wire, rooms))
    logger.info("product %s edited", product_id)
    return web.json_response(wire)


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
