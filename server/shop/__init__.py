"""The shop at the edge, by concern: `resources` (the Shop and its Stripe
client), `handlers` (Socket.IO), `routes` (products, Stripe webhook),
`images` (product images), `buyer_routes` (claims, /me/orders),
`room_products` (the console's product list), `jobs` (scheduler), `broadcast`
(coalesced stock), `sold_out` (drops known sold out, kept true), `snapshot`
(its `room:state` parts), `demo` (demo
products and drop). `setup` wires them into the app.
"""

from aiohttp import web

from server.appkeys import SNAPSHOT_PARTS
from server.rooms.demo import SEEDERS
from server.shop import (
    broadcast,
    buyer_routes,
    demo,
    handlers,
    images,
    jobs,
    resources,
    room_products,
    routes,
    snapshot,
    sold_out,
)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(resources.shop_ctx)
    app.router.add_routes(routes.routes)
    app.router.add_routes(buyer_routes.routes)
    app.router.add_routes(room_products.routes)
    images.setup(app)
    handlers.setup(app)
    app[SNAPSHOT_PARTS].append(snapshot.part(app))
    app[SEEDERS].append(demo.seed_demo)
    jobs.setup(app)
    broadcast.setup(app)
    sold_out.setup(app)
