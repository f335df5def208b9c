"""A room's team at the edge: the owner joins as host (`owner_role`), and
invite links for co-hosts and moderators, listed and revocable (`routes`,
`revocation`). `setup` wires them into the app, after server.accounts."""

from aiohttp import web

from server.invites import owner_role


def setup(app: web.Application) -> None:
    owner_role.setup(app)
