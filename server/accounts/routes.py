"""HTTP routes of accounts: sign-in by mail (`/auth/email`, `/auth/exchange`),
the account (`/me`), joining a room as the account (`/rooms/{room}/join`),
sign-out, and inviting creators (admin). Errors answer in the protocol's
JSON shape; the sign-in code is never logged (nor is the link)."""

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from accounts import limits, signin
from accounts.mail import creator_invite_mail, signin_mail
from accounts.model import CREATOR, MAX_NAME, Account
from kernel import validate as v
from kernel.emails import normalize_email
from kernel.errors import NotFound
from server import tokens
from server.accounts.resources import OUTBOX
from server.accounts.revocation import close_sockets
from server.appkeys import ACCOUNTS, ROOMS, SCHEDULER, SETTINGS
from server.buyers import verified_account
from server.client_address import client_address
from server.errors import read_json
from server.http_auth import require_admin
from server.roles import Role

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

JOIN_TTL_S = 12 * 3600
LINK_MINUTES = signin.SIGNIN_TTL_S // 60

# (room id, account) -> the account's role in that room, or None. A later
# issue (rooms owned by creators, co-hosts) adds its rule here; the highest
# answer wins, listener when none answers.
RoleRule = Callable[[str, Account], Awaitable[Role | None]]
JOIN_ROLES: web.AppKey[list[RoleRule]] = web.AppKey("join_roles", list)


async def _mail_link(app: web.Application, email: str, next_path: str | None) -> str:
    code = await signin.issue(app[ROOMS].redis, email, next_path)
    return signin.link(app[SETTINGS].public_url, code, next_path)


@routes.post("/api/v1/auth/email")
async def ask_signin(request: web.Request) -> web.Response:
    p = await read_json(request)
    email = normalize_email(p.get("email"))
    next_path = signin.safe_next(p.get("next"))
    app = request.app
    scripts = app[ACCOUNTS].scripts
    await limits.check_address(scripts, client_address(request))
    # The same work whether or not an account exists: nothing is looked up.
    if await limits.email_allowed(scripts, email):
        link = await _mail_link(app, email, next_path)
        await app[OUTBOX].enqueue(signin_mail(email, link, LINK_MINUTES), app[SCHEDULER].clock())
    return web.json_response({"ok": True}, status=202)


@routes.post("/api/v1/auth/exchange")
async def exchange(request: web.Request) -> web.Response:
    p = await read_json(request)
    app = request.app
    await limits.check_exchange(app[ACCOUNTS].scripts, client_address(request))
    pending = await signin.redeem(app[ROOMS].redis, signin.parse_code(p.get("code")))
    now = app[SCHEDULER].clock()
    account = await app[ACCOUNTS].get_or_create(pending.email, now)
    token = tokens.mint_account(
        app[SETTINGS].secret, account_id=account.id, name=account.name, gen=account.gen, now=now
    )
    logger.info("account %s signed in", account.id)
    body = {"token": token, "account": account.as_dict(), "next": pending.next}
    return web.json_response(body)


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    claims = await verified_account(request)
    account = await request.app[ACCOUNTS].require(claims.account_id)
    return web.json_response({"account": account.as_dict()})


@routes.patch("/api/v1/me")
async def rename(request: web.Request) -> web.Response:
    claims = await verified_account(request)
    name = v.text(await read_json(request), "name", max_len=MAX_NAME)
    account = await request.app[ACCOUNTS].rename(claims.account_id, name)
    return web.json_response({"account": account.as_dict()})


async def _role_in(app: web.Application, room: str, account: Account) -> Role:
    found = [await rule(room, account) for rule in app[JOIN_ROLES]]
    granted = [role for role in found if role is not None]
    return max(granted) if granted else Role.LISTENER


@routes.post("/api/v1/rooms/{room}/join")
async def join(request: web.Request) -> web.Response:
    claims = await verified_account(request)
    room_id = request.match_info["room"]
    app = request.app
    if await app[ROOMS].get_room(room_id) is None:
        raise NotFound("no such room")
    account = await app[ACCOUNTS].require(claims.account_id)
    now = app[SCHEDULER].clock()
    ttl = max(1.0, min(JOIN_TTL_S, claims.exp - now))
    token = tokens.mint(
        app[SETTINGS].secret,
        room=room_id,
        identity=account.id,
        role=await _role_in(app, room_id, account),
        name=account.name,
        ttl_s=ttl,
        now=now,
        gen=account.gen,
    )
    return web.json_response({"token": token, "identity": account.id, "expires_at": int(now + ttl)})


@routes.post("/api/v1/auth/signout")
async def signout(request: web.Request) -> web.Response:
    claims = await verified_account(request)
    await request.app[ACCOUNTS].sign_out(claims.account_id)
    closed = await close_sockets(request.app, claims.account_id)
    logger.info("account %s signed out (%d connections closed)", claims.account_id, closed)
    return web.json_response({"ok": True})


@routes.post("/api/v1/creators")
async def invite_creator(request: web.Request) -> web.Response:
    await require_admin(request)
    p = await read_json(request)
    email = normalize_email(p.get("email"))
    name = v.text(p, "name", max_len=MAX_NAME)
    app = request.app
    store, now = app[ACCOUNTS], app[SCHEDULER].clock()
    account = await store.get_or_create(email, now)
    await store.grant(account.id, CREATOR)
    account = await store.rename(account.id, name)
    link = await _mail_link(app, email, "/me")
    await app[OUTBOX].enqueue(creator_invite_mail(email, name, link, LINK_MINUTES), now)
    logger.info("account %s invited as a creator", account.id)
    return web.json_response({"account": account.as_dict()})
