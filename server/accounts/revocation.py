"""Sign-out reaches every token of the account at once: HTTP requests
carrying a signed-out account's token (an account token, or a room token
from `/join`) are refused before any route runs, and the account's open
Socket.IO connections are told (`session:expired`) and closed, on whichever
process holds them (their sids are noted in Redis at connect; with several
processes python-socketio's Redis manager relays the disconnect).
"""

from aiohttp import web

from accounts import identities
from kernel.errors import Unauthorized
from rooms.events import SESSION_EXPIRED
from server import tokens
from server.appkeys import ACCOUNTS, SETTINGS, SIO
from server.buyers import SIGNED_OUT, check_not_signed_out
from server.emitter import account_channel
from server.errors import Handler
from server.http_auth import bearer


def _account_of(secret: str, token: str) -> tuple[str, int | None] | None:
    """(identity, gen) when the token is a valid token of an account."""
    subject = tokens.peek_subject(token)
    if subject is None or not identities.is_account(subject):
        return None  # most tokens: no signature check, no lookup here
    try:
        account = tokens.verify_account(secret, token)
        return account.account_id, account.gen
    except Unauthorized:
        pass
    try:
        room = tokens.verify(secret, token)
    except Unauthorized:
        return None  # the route refuses it, or needs none
    return (room.identity, room.gen) if identities.is_account(room.identity) else None


@web.middleware
async def refuse_signed_out(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = bearer(request)
    if token and token.isascii():
        found = _account_of(request.app[SETTINGS].secret, token)
        if found is not None:
            await check_not_signed_out(request.app, *found)
    return await handler(request)


async def close_sockets(app: web.Application, account_id: str) -> int:
    """Tell every connection of the account, then close them all."""
    sio = app[SIO]
    channel = account_channel(account_id)
    payload = {"code": "unauthorized", "message": SIGNED_OUT}
    await sio.emit(SESSION_EXPIRED, payload, room=channel)
    here = {sid for sid, _ in sio.manager.get_participants("/", channel)}
    sids = here | set(await app[ACCOUNTS].take_sockets(account_id))
    for sid in sorted(sids):
        await sio.disconnect(sid)
    return len(sids)
