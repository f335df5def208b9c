"""Bought and previewed files at the edge: `resources` (the file store,
`app[STORAGE]`, opened and closed in a cleanup_ctx) and `routes` (signed
downloads from local storage, public previews). `commerce.storage` holds
the store itself, `commerce.downloads` the signing rule.
"""

from aiohttp import web

from server.files import resources, routes


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(resources.storage_ctx)
    app.router.add_routes(routes.routes)
