"""Accounts at the edge, by concern: `resources` (the account store, the
outbox and its transport), `routes` (sign-in, /me, join, sign-out,
creators), `owner_role` (a room's owner joins it as host), `revocation`
(signed-out tokens refused on every route, their sockets closed), `jobs`
(mail delivery and its gauge), `receipts` (a receipt mail when an order is
announced paid), `reminders` (mails to a room's followers before an episode
and when it goes live). `setup` wires them into the app.
"""

from aiohttp import web

from server.accounts import jobs, owner_role, receipts, reminders, resources, revocation, routes


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(resources.accounts_ctx)
    app.middlewares.append(revocation.refuse_signed_out)
    app.router.add_routes(routes.routes)
    app[routes.JOIN_ROLES] = [owner_role.owner_is_host(app)]
    receipts.setup(app)
    reminders.setup(app)
    jobs.setup(app)
