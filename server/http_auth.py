"""Who is calling an HTTP route: the admin key, or a room's access token.

The admin key is accepted only in the `Authorization: Bearer` header (a
query string lands in proxy and access logs). Failed admin-key attempts are
counted per client address; after `ADMIN_FAILURES_PER_MINUTE` the address
is answered `rate_limited` (429), right key or not, until it has been quiet
for a minute.
"""

import hmac
from typing import Any

from aiohttp import web

from kernel.errors import Invalid, RateLimited, Unauthorized
from server import tokens
from server.appkeys import REDIS, SETTINGS
from server.client_address import client_address
from server.roles import Claims

ADMIN_FAILURES_PER_MINUTE = 5
ADMIN_FAILURE_WINDOW_S = 60
# string counter, TTL ADMIN_FAILURE_WINDOW_S from the last failure:
# "droproom:admin_failures:<client address>"
ADMIN_FAILURES = "droproom:admin_failures:{addr}"
_COUNT_FAILURE = "redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1])"


def header_bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def bearer(request: web.Request) -> str | None:
    """A room token: the header, or `?token=` (links to replays and files)."""
    return header_bearer(request) or request.query.get("token") or None


async def require_admin(request: web.Request) -> None:
    redis: Any = request.app[REDIS]  # redis-py types its async answers loosely
    key = ADMIN_FAILURES.format(addr=client_address(request))
    failures = int(await redis.get(key) or 0)
    if failures >= ADMIN_FAILURES_PER_MINUTE:
        raise RateLimited("too many failed admin-key attempts from this address; wait a minute")
    given = header_bearer(request)
    expected = request.app[SETTINGS].admin_key
    if given and given.isascii() and hmac.compare_digest(given.encode(), expected.encode()):
        return
    if given is not None:
        # one script: the count and its window move together (also on a Cluster)
        await redis.eval(_COUNT_FAILURE, 1, key, ADMIN_FAILURE_WINDOW_S)
    raise Unauthorized("the admin key is required (Authorization: Bearer <key>)")


def require_token(request: web.Request, room: str) -> Claims:
    token = bearer(request)
    if token is not None and not token.isascii():
        # bytes that are not UTF-8 arrive as surrogates, which PyJWT cannot encode
        raise Invalid("the token is not ASCII")
    return tokens.verify(request.app[SETTINGS].secret, token, room=room)
