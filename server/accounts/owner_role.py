"""The room's owner joins as its host: a JOIN_ROLES rule (server.accounts.
routes) answering `host` for the creator whose account owns the room
(accounts.ownership decides who owns)."""

from aiohttp import web

from accounts.model import Account
from accounts.ownership import Actor
from server.accounts.routes import RoleRule
from server.appkeys import ROOMS
from server.roles import Role


def owner_is_host(app: web.Application) -> RoleRule:
    async def rule(room_id: str, account: Account) -> Role | None:
        room = await app[ROOMS].get_room(room_id)
        if room is None or not account.is_creator:
            return None
        return Role.HOST if Actor(account.id).owns(room.owner) else None

    return rule
