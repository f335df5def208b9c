"""A room's team at the edge: invite links for co-hosts and moderators,
minted, listed and revoked by the room's owner (`routes`). Revoked tokens
are refused by the core's server.revoked_tokens (a middleware added here,
and the Socket.IO connect check)."""

from aiohttp import web

from server import revoked_tokens
from server.invites import routes


def setup(app: web.Application) -> None:
    app.middlewares.append(revoked_tokens.refuse_revoked)
    app.router.add_routes(routes.routes)
