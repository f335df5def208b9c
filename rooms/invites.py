"""Invite links: room tokens an owner (or the admin) mints for their team,
co-hosts and moderators above all, listed and revocable.

An invite is the record of one minted token: its id is the token's `jti`,
and the token string itself is never stored (it is shown once, at
minting). Lifetimes: `DEFAULT_TTL_S` unless the settings say otherwise
(`DROPROOM_INVITE_TTL_S`), at most `MAX_TTL_S`. Revoking marks the
record and keeps `{room}:invite:<id>:revoked` until the token would have
expired, which every token check asks (server.revoked_tokens). Everything
of one room lives under its hash tag, so each change is one MULTI or one
script on one slot. Must not import any framework.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from kernel import validate as v
from kernel.errors import Invalid
from rooms import keys
from rooms.roles import Role
from rooms.store import RoomStore

DEFAULT_TTL_S = 7 * 24 * 3600
MAX_TTL_S = 30 * 24 * 3600  # server.tokens.MAX_TTL_S: no token lives longer
MAX_NAME = 80
STAFF_PAGE, LISTENER_PAGE = "host", "r"


@dataclass(frozen=True, slots=True)
class InviteRequest:
    identity: str
    name: str
    role: Role
    ttl_s: int


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    identity: str
    name: str
    role: str
    created_at: float
    expires_at: int
    revoked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: str) -> Invite:
        return cls(**json.loads(raw))


def new_invite_id() -> str:
    return "inv_" + secrets.token_hex(8)


def new_identity(role: Role) -> str:
    """An identity for an invite that names none: `team-<random>` (never
    `acct_` or `guest-`, which only sign-in and guests hand out)."""
    return f"{role.label}-{secrets.token_hex(4)}"


def parse_request(p: Mapping[str, Any], default_ttl_s: int) -> InviteRequest:
    """The invite asked for; every field checked (the identity's reserved
    prefixes are accounts.identities.check_mintable's, asked by the caller)."""
    try:
        role = Role.parse(p.get("role"))
    except ValueError:
        raise Invalid("role must be host, moderator, speaker or listener") from None
    identity = v.ident(p, "identity") if p.get("identity") is not None else new_identity(role)
    name = v.text(p, "name", max_len=MAX_NAME)
    ttl = v.opt_integer(p, "ttl_s", lo=60, hi=MAX_TTL_S)
    return InviteRequest(identity, name, role, ttl or min(default_ttl_s, MAX_TTL_S))


def page_for(role: Role) -> str:
    """The page an invite opens: the console for moderators and hosts, the
    listener page otherwise (as `droproom demo` prints them)."""
    return STAFF_PAGE if role.can(Role.MODERATOR) else LISTENER_PAGE


def link(public_url: str, room: str, role: Role, token: str) -> str:
    return f"{public_url}/{page_for(role)}/{room}#token={token}"


def invite_for(req: InviteRequest, now: float) -> Invite:
    expires = int(now + req.ttl_s)
    return Invite(new_invite_id(), req.identity, req.name, req.role.label, now, expires)


def _ttl(expires_at: float, now: float) -> int:
    """Seconds a record about a token must outlive it (at least one)."""
    return max(1, math.ceil(expires_at - now) + 1)


class Invites:
    """A room's invites in Redis (the room store's connection)."""

    def __init__(self, store: RoomStore) -> None:
        self._store = store
        self._redis = store.redis

    async def add(self, room: str, invite: Invite) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hset(keys.invites(room), invite.id, json.dumps(invite.as_dict()))
            tx.zadd(keys.invites_expiry(room), {invite.id: invite.expires_at})
            await tx.execute()

    async def listed(self, room: str, now: float) -> list[Invite]:
        """The room's unexpired invites, oldest first (expired ones forgotten)."""
        gone = await self._redis.zrangebyscore(keys.invites_expiry(room), "-inf", f"({now}")
        if gone:
            async with self._redis.pipeline(transaction=True) as tx:
                tx.hdel(keys.invites(room), *gone)
                tx.zrem(keys.invites_expiry(room), *gone)
                await tx.execute()
        raws = (await self._redis.hgetall(keys.invites(room))).values()
        found = [Invite.from_json(raw) for raw in raws]
        return sorted((i for i in found if i.expires_at >= now), key=lambda i: i.created_at)

    async def revoke(self, room: str, invite_id: str, now: float) -> Invite | None:
        """Mark the invite revoked and refuse its token until it expires;
        None if the room has no such unexpired invite. One script."""
        raw = await self._store.run(
            "rooms/invite_revoke",
            [keys.invites(room), keys.invite_revoked(room, invite_id)],
            [invite_id, now],
        )
        return Invite.from_json(raw) if raw else None

    async def is_revoked(self, room: str, invite_id: str) -> bool:
        return bool(await self._redis.exists(keys.invite_revoked(room, invite_id)))

    async def note_socket(
        self, room: str, invite_id: str, sid: str, expires_at: float, now: float
    ) -> None:
        """A connection made with the invite's token (closed if it is revoked)."""
        async with self._redis.pipeline(transaction=True) as tx:
            tx.sadd(keys.invite_sockets(room, invite_id), sid)
            tx.expire(keys.invite_sockets(room, invite_id), _ttl(expires_at, now))
            await tx.execute()

    async def take_sockets(self, room: str, invite_id: str) -> list[str]:
        """The connections noted for the invite, forgotten from now on (one
        script: a Cluster client's MULTI cannot answer SMEMBERS)."""
        script, key = "rooms/invite_take_sockets", keys.invite_sockets(room, invite_id)
        return sorted(str(sid) for sid in await self._store.run(script, [key], []))
