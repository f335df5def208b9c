"""Who is calling an HTTP route: the admin key, or a room's access token."""

import hmac

from aiohttp import web

from kernel.errors import Invalid, Unauthorized
from server import tokens
from server.appkeys import SETTINGS
from server.roles import Claims


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.query.get("token") or None


def require_admin(request: web.Request) -> None:
    key = bearer(request)
    expected = request.app[SETTINGS].admin_key
    if not key or not hmac.compare_digest(key.encode(), expected.encode()):
        raise Unauthorized("the admin key is required")


def require_token(request: web.Request, room: str) -> Claims:
    token = bearer(request)
    if token is not None and not token.isascii():
        # bytes that are not UTF-8 arrive as surrogates, which PyJWT cannot encode
        raise Invalid("the token is not ASCII")
    return tokens.verify(request.app[SETTINGS].secret, token, room=room)
