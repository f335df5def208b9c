"""The buyer's HTTP routes of the shop: `POST /api/v1/auth/claim` (an
account takes a guest identity's orders) and `GET /api/v1/me/orders` (the
buyer's orders across rooms, newest first)."""

from __future__ import annotations

import logging

from aiohttp import web

from commerce.my_orders import orders_of
from kernel.errors import Invalid, Unauthorized
from server import tokens
from server.appkeys import SCHEDULER, SETTINGS
from server.buyers import require_buyer_identity, verified_account
from server.errors import read_json
from server.shop.resources import SHOP

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


def _guest(request: web.Request, guest_token: object) -> str:
    """The guest identity an unexpired guest token names (the proof of a claim)."""
    if not isinstance(guest_token, str) or not guest_token.isascii():
        raise Invalid("guest_token must be the guest's token")
    try:
        claims = tokens.verify(request.app[SETTINGS].secret, guest_token)
    except Unauthorized as exc:
        raise Invalid(f"guest_token is not usable: {exc.message}") from exc
    return claims.identity


@routes.post("/api/v1/auth/claim")
async def claim(request: web.Request) -> web.Response:
    account = (await verified_account(request)).account_id  # not signed out
    body = await read_json(request)
    guest = _guest(request, body.get("guest_token"))
    claimed = await request.app[SHOP].claims.claim(guest, account)
    return web.json_response({"claimed": claimed.as_dict()})


@routes.get("/api/v1/me/orders")
async def my_orders(request: web.Request) -> web.Response:
    identity = await require_buyer_identity(request)  # from /join or /guest only
    shop, now = request.app[SHOP], request.app[SCHEDULER].clock()
    found = await orders_of(shop.orders, identity)
    # as order:updated sends them: a paid order's receipt carries fresh links
    return web.json_response({"orders": [await shop.order_dict(order, now) for order in found]})
