"""The account store: accounts by id and by email, their names, roles and
token generation. Must not import any framework.

Getting or creating an account by email is two single-slot steps: the
by-email index is claimed with SET NX (the first id wins, for every caller),
then the winner's hash is filled with HSETNX only (idempotent). A process
that stops between the two leaves an index entry whose hash the next call
creates; two concurrent calls for one address end with one account.
"""

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from accounts import identities, keys
from accounts.model import ROLES, Account
from kernel.errors import Invalid, NotFound
from kernel.lua import Scripts

SOCKETS_TTL_S = 31 * 86400  # longer than any token of the account


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


class AccountStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        # Text responses (decode_responses=True); redis-py's types cannot say so.
        self.redis: Any = redis
        self.scripts = Scripts(redis)

    async def get(self, account_id: str) -> Account | None:
        if not identities.is_account(account_id):
            return None
        h = await self.redis.hgetall(keys.account(account_id))
        return Account.from_hash(h) if h else None

    async def require(self, account_id: str) -> Account:
        found = await self.get(account_id)
        if found is None:
            raise NotFound("no such account")
        return found

    async def find_by_email(self, email: str) -> Account | None:
        account_id = await self.redis.get(keys.by_email(email))
        return await self.get(account_id) if account_id else None

    async def get_or_create(self, email: str, now: float) -> Account:
        """The account of `email` (already normalized), created if new."""
        owner = await self.scripts.run(
            "accounts/claim_email", [keys.by_email(email)], [identities.new_account_id()]
        )
        flat = await self.scripts.run(
            "accounts/ensure", [keys.account(owner)], [owner, email, repr(now)]
        )
        return Account.from_hash(_pairs(flat))

    async def _update(self, account_id: str, op: str, value: str = "") -> Account:
        flat = await self.scripts.run("accounts/update", [keys.account(account_id)], [op, value])
        return Account.from_hash(_pairs(flat))

    async def rename(self, account_id: str, name: str) -> Account:
        return await self._update(account_id, "name", name)

    async def grant(self, account_id: str, role: str) -> Account:
        if role not in ROLES:
            raise Invalid(f"unknown account role {role!r}")
        return await self._update(account_id, "role", role)

    async def sign_out(self, account_id: str) -> Account:
        """Every token of the account older than this stops working."""
        return await self._update(account_id, "signout")

    async def note_socket(self, account_id: str, sid: str) -> None:
        """Remember an open connection, so sign-out can close it anywhere."""
        async with self.redis.pipeline(transaction=True) as tx:
            tx.sadd(keys.sockets(account_id), sid)
            tx.expire(keys.sockets(account_id), SOCKETS_TTL_S)
            await tx.execute()

    async def forget_socket(self, account_id: str, sid: str) -> None:
        await self.redis.srem(keys.sockets(account_id), sid)

    async def take_sockets(self, account_id: str) -> list[str]:
        """The open connections noted, forgotten from now on (sign-out)."""
        found = await self.scripts.run("accounts/take_sockets", [keys.sockets(account_id)], [])
        return sorted(str(sid) for sid in found)

    async def gen_of(self, account_id: str) -> int | None:
        """The current token generation, or None for an unknown account."""
        raw = await self.redis.hget(keys.account(account_id), "gen")
        return None if raw is None else int(raw)
