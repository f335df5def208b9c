"""Who is buying, for the `/me/*` routes: an account token (`kind:
"account"`), or a room token of any room (a guest's or a signed-in buyer's
room token, or any v1 token: its identity's own orders). The one place the
routes ask; sign-out revocation is checked here too.
"""

from aiohttp import web

from kernel.errors import Invalid, Unauthorized
from server import tokens
from server.appkeys import SETTINGS
from server.http_auth import bearer


async def buyer_identity(request: web.Request) -> str:
    token = bearer(request)
    if token is None:
        raise Unauthorized("a token is required (Authorization: Bearer <token>)")
    if not token.isascii():
        raise Invalid("the token is not ASCII")
    secret = request.app[SETTINGS].secret
    try:
        return tokens.verify_account(secret, token).account_id
    except Unauthorized:
        pass
    return tokens.verify(secret, token).identity
