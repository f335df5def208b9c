"""Where a creator's webhook endpoints are kept: under the creator's tag,
so a creator only ever reads and changes their own (another's id is simply
not found). Registering and rotating are one script each. Must not import
any framework.
"""

from typing import Any

import redis.asyncio as aioredis

from accounts import hook_keys as keys
from accounts.hooks import MAX_ENDPOINTS, Endpoint
from kernel.errors import NotFound
from kernel.lua import Scripts


class HookStore:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis: Any = redis  # text responses
        self.scripts = Scripts(redis)

    async def add(self, endpoint: Endpoint) -> None:
        pairs = [x for kv in endpoint.as_fields().items() for x in kv]
        await self.scripts.run(
            "accounts/hook_add",
            [keys.endpoints(endpoint.owner), keys.endpoint(endpoint.owner, endpoint.id)],
            [endpoint.id, MAX_ENDPOINTS, *pairs],
        )

    async def get(self, owner: str, endpoint_id: str) -> Endpoint | None:
        fields = await self.redis.hgetall(keys.endpoint(owner, endpoint_id))
        return Endpoint.from_fields(fields) if fields else None

    async def require(self, owner: str, endpoint_id: str) -> Endpoint:
        endpoint = await self.get(owner, endpoint_id)
        if endpoint is None:
            raise NotFound("no such webhook")
        return endpoint

    async def of(self, owner: str) -> list[Endpoint]:
        """The owner's endpoints, oldest first."""
        found = [
            await self.get(owner, i)
            for i in sorted(await self.redis.smembers(keys.endpoints(owner)))
        ]
        return sorted((e for e in found if e is not None), key=lambda e: (e.created_at, e.id))

    async def wanting(self, owner: str, event_type: str) -> list[Endpoint]:
        return [e for e in await self.of(owner) if e.wants(event_type)]

    async def remove(self, owner: str, endpoint_id: str) -> None:
        await self.require(owner, endpoint_id)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.srem(keys.endpoints(owner), endpoint_id)
            tx.delete(keys.endpoint(owner, endpoint_id))
            await tx.execute()

    async def rotate(
        self, owner: str, endpoint_id: str, secret: str, previous_until: float
    ) -> Endpoint:
        await self.scripts.run(
            "accounts/hook_rotate",
            [keys.endpoint(owner, endpoint_id)],
            [secret, repr(previous_until)],
        )
        return await self.require(owner, endpoint_id)
