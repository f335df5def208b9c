"""The products a room's staff may pick from (the host console's product
list): `GET /api/v1/rooms/{room}/products` -> `{"products": [...]}`, the
room owner's products, for the admin, the owner, or a token of that room
with at least the moderator's role (invited co-hosts and moderators, who
have no account token to list `?owner=me` with). A listener is refused: a
creator's unpinned catalogue is not public.

An admin-owned room (wave 1) lists every product: the admin may pin
anything there, and so may its staff (a SCAN, once per console load).
"""

from aiohttp import web

from kernel.owners import ADMIN_OWNER
from server.owners import require_room_staff
from server.roles import Role
from server.shop.resources import SHOP

routes = web.RouteTableDef()


@routes.get("/api/v1/rooms/{room}/products")
async def room_products(request: web.Request) -> web.Response:
    _, room = await require_room_staff(request, request.match_info["room"], Role.MODERATOR)
    catalog = request.app[SHOP].catalog
    found = await (catalog.every() if room.owner == ADMIN_OWNER else catalog.owned(room.owner))
    wire = []
    for product in found:
        _, inv = await catalog.get(product.id)
        wire.append(product.as_dict(inv.left if inv else None))
    return web.json_response({"products": wire}, headers={"Cache-Control": "no-store"})
