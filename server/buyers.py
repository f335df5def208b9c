"""Who is buying, for the `/me/*` routes, `buy:now`, saved cards and claims:
an account token (`kind: "account"`), or a room token. The one place the
routes ask; sign-out revocation is checked here too.

Since admins and creators may not mint tokens for identities starting
`acct_` or `guest-` (accounts.identities), a room token carrying one came
from `/join` (a signed-in account) or `/guest`. `signed_in_account` and
`require_account_identity` say whether the caller is a signed-in account.
"""

from typing import Any

from aiohttp import web

from accounts import identities
from kernel.errors import Invalid, Unauthorized
from server import tokens
from server.appkeys import ACCOUNTS, SETTINGS
from server.http_auth import bearer
from server.roles import Claims

SIGNED_OUT = "this sign-in has ended (signed out); sign in again"


async def check_not_signed_out(app: web.Application, identity: str, gen: int | None) -> None:
    """`Unauthorized` for a token of an account that signed out since (its
    `gen` is older than the account's), or of an account that does not exist."""
    if not identities.is_account(identity):
        return
    current = await app[ACCOUNTS].gen_of(identity)
    if current is None or gen is None or gen != current:
        raise Unauthorized(SIGNED_OUT)


def _token(request: web.Request) -> str:
    token = bearer(request)
    if token is None:
        raise Unauthorized("a token is required (Authorization: Bearer <token>)")
    if not token.isascii():
        raise Invalid("the token is not ASCII")
    return token


async def verified_account(request: web.Request) -> tokens.AccountClaims:
    """The claims of the request's account token, not signed out."""
    claims = tokens.verify_account(request.app[SETTINGS].secret, _token(request))
    await check_not_signed_out(request.app, claims.account_id, claims.gen)
    return claims


async def buyer_identity(request: web.Request) -> str:
    token = _token(request)
    secret = request.app[SETTINGS].secret
    try:
        account = tokens.verify_account(secret, token)
    except Unauthorized:
        room = tokens.verify(secret, token)
        await check_not_signed_out(request.app, room.identity, room.gen)
        return room.identity
    await check_not_signed_out(request.app, account.account_id, account.gen)
    return account.account_id


def signed_in_account(claims: Any) -> str | None:
    """The account id when these claims (a room token's `Claims` or an
    `AccountClaims`) belong to a signed-in account, else None. The gen check
    is the caller's (`check_not_signed_out`; Socket.IO checks it on connect)."""
    if isinstance(claims, tokens.AccountClaims):
        return claims.account_id
    if isinstance(claims, Claims) and identities.is_account(claims.identity):
        return claims.identity
    return None


async def require_account_identity(request: web.Request) -> str:
    """The signed-in account calling (account token or a room token from
    `/join`, not signed out), or `Unauthorized`."""
    identity = await buyer_identity(request)
    if not identities.is_account(identity):
        raise Unauthorized("sign in first: this needs an account")
    return identity


async def require_buyer_identity(request: web.Request) -> str:
    """Like `buyer_identity`, but only identities handed out by sign-in or
    `/guest` (PROTOCOL v2: what reaches `/me/*`, `buy:now`, saved cards and
    claims); an admin-minted room token is refused."""
    identity = await buyer_identity(request)
    if not identities.is_signed_in_kind(identity):
        raise Unauthorized("sign in, or join as a guest: this token was not handed out to a buyer")
    return identity
