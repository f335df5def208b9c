"""Who may change a room or a product over HTTP: the platform admin (the
admin key) or the creator who owns it (an account token with `creator`).
Studio routes ask here and nowhere else; the rule itself is
accounts.ownership.Actor.owns.

A bearer that is not the admin key and not an account token goes through
`require_admin`, so a wrong key still counts towards its rate limit.
"""

import hmac

from aiohttp import web

from accounts.ownership import ADMIN, Actor
from kernel.errors import Forbidden, NotFound, Unauthorized
from rooms.model import Room
from server import tokens
from server.appkeys import ACCOUNTS, ROOMS, SETTINGS
from server.buyers import verified_account
from server.http_auth import header_bearer, require_admin, require_token
from server.roles import Claims, Role

NOT_YOURS = "this belongs to another creator"


def _is_admin_key(request: web.Request) -> bool:
    given = header_bearer(request)
    expected = request.app[SETTINGS].admin_key
    return bool(given and given.isascii()) and hmac.compare_digest(
        str(given).encode(), expected.encode()
    )


def _is_account_token(request: web.Request) -> bool:
    try:
        tokens.verify_account(request.app[SETTINGS].secret, header_bearer(request))
    except Unauthorized:
        return False
    return True


async def require_actor(request: web.Request) -> Actor:
    """The admin, or a signed-in creator; `Forbidden` for an account that is
    not a creator, `Unauthorized` (and a counted admin failure) otherwise."""
    if _is_admin_key(request):
        await require_admin(request)  # a throttled address is refused, right key or not
        return ADMIN
    if not _is_account_token(request):
        await require_admin(request)  # refuses, counting the attempt
        return ADMIN
    claims = await verified_account(request)
    account = await request.app[ACCOUNTS].require(claims.account_id)
    if not account.is_creator:
        raise Forbidden("only creators may do this; ask the platform admin for an invite")
    return Actor(account.id)


async def require_room_owner(request: web.Request, room_id: str) -> tuple[Actor, Room]:
    """The admin or the room's owner, and the room (`NotFound` if none)."""
    actor = await require_actor(request)
    room = await request.app[ROOMS].get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    if not actor.owns(room.owner):
        raise Forbidden(NOT_YOURS)
    return actor, room


async def require_owner(request: web.Request, owner: str) -> Actor:
    """The admin or the creator whose account is `owner` (a product's or a
    room's: server.shop.owners.require_product_owner reads the product)."""
    actor = await require_actor(request)
    if not actor.owns(owner):
        raise Forbidden(NOT_YOURS)
    return actor


async def require_room_staff(
    request: web.Request, room_id: str, least: Role = Role.HOST
) -> tuple[Actor | Claims, Room]:
    """The admin, the room's owner, or a token of that room with at least
    `least` (a co-host or moderator invited by the owner)."""
    token_claims: Claims | None = None
    if not _is_admin_key(request) and not _is_account_token(request):
        token_claims = require_token(request, room_id)
    if token_claims is None:
        return await require_room_owner(request, room_id)
    if not token_claims.role.can(least):
        raise Forbidden(f"only the owner or a {least.name.lower()} of this room may do this")
    room = await request.app[ROOMS].get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    return token_claims, room


EVERYTHING = None


async def listing_owner(request: web.Request) -> str | None:
    """Whose things a studio list shows (`?owner=`): `me` (the default) is
    the caller's own; the admin's `me` is everything (`None`: the admin
    owns every room and product in the sense of accounts.ownership), and
    the admin may name a creator's account id to see theirs. A creator
    naming anyone else is `Forbidden`."""
    actor = await require_actor(request)
    asked = request.query.get("owner", "me")
    if asked in ("me", actor.owner_id):
        return EVERYTHING if actor.is_admin else actor.owner_id
    if not actor.is_admin:
        raise Forbidden("a creator sees only their own rooms and products (owner=me)")
    return asked
