"""Outbound webhooks at the edge, by concern: `resources` (the endpoint store
and the delivery queue), `routes` (`/api/v1/webhooks`), `sources` (which
domain events become webhooks, for whom), `sender` (one delivery, guarded
against SSRF), `jobs` (the delivery worker). The rules are in accounts.hooks.
"""

from aiohttp import web

from server.hooks import jobs, resources, routes, sources


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(resources.hooks_ctx)
    app.router.add_routes(routes.routes)
    sources.setup(app)
    jobs.setup(app)
