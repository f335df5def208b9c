"""The webhook deliveries: one per event and endpoint, queued in Redis until
the endpoint took it or the retries ran out, and kept as the endpoint's
delivery log. Must not import any framework.

Enqueueing is one script (accounts/lua/hook_enqueue.lua) that also marks the
event as enqueued, so an event emitted twice, or by two processes, goes out
once, always with the same message id. A scheduler job claims what is due
(the mail outbox's claim script: each claimed delivery is pushed out by a
lease so another worker leaves it alone), sends it, and records the outcome
(accounts/lua/hook_result.lua): delivered, retried later, or failed.
"""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from accounts import hook_keys as keys
from accounts.hooks import Endpoint
from kernel.lua import Scripts

ONCE_TTL_S = 30 * 86400  # how long "this event was enqueued" is remembered
SETTLED_TTL_S = 30 * 86400  # how long a settled delivery stays in the log
LOG_KEEP = 100  # deliveries kept in an endpoint's log
LEASE_S = 60.0  # a claimed delivery is left alone this long (a try takes at most 5 s)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    msg_id: str
    type: str
    body: str
    owner: str
    endpoint: str
    state: str  # pending, delivered, failed
    attempts: int
    created_at: float
    next_at: float | None = None
    last_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: float | None = None

    @classmethod
    def from_fields(cls, h: dict[str, str]) -> "Delivery":
        return cls(
            id=h["id"],
            msg_id=h["msg"],
            type=h["type"],
            body=h["body"],
            owner=h["owner"],
            endpoint=h["endpoint"],
            state=h.get("state") or "pending",
            attempts=int(h.get("attempts") or 0),
            created_at=float(h.get("created_at") or 0),
            next_at=_float(h.get("next_at")) if h.get("state") == "pending" else None,
            last_at=_float(h.get("last_at")),
            last_status=int(h["last_status"]) if h.get("last_status") else None,
            last_error=h.get("last_error") or None,
            delivered_at=_float(h.get("delivered_at")),
        )

    def as_dict(self) -> dict[str, Any]:
        """A line of the delivery log (the body is not repeated)."""
        return {
            "id": self.id,
            "event_id": self.msg_id,
            "type": self.type,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "last_attempt_at": self.last_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "next_retry_at": self.next_at if self.attempts else None,
            "delivered_at": self.delivered_at,
        }


class HookQueue:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis: Any = redis  # text responses
        self.scripts = Scripts(redis)

    async def _enqueue(
        self, mark: str, args: list[Any], endpoints: Sequence[Endpoint]
    ) -> str | None:
        ks = [keys.DUE, mark]
        per: list[Any] = []
        for endpoint in endpoints:
            delivery_id = secrets.token_hex(8)
            ks += [keys.delivery(delivery_id), keys.log(endpoint.owner, endpoint.id)]
            per += [delivery_id, endpoint.owner, endpoint.id]
        found = await self.scripts.run("accounts/hook_enqueue", ks, [*args, LOG_KEEP, *per])
        return str(found) if found else None

    async def enqueue_once(
        self, event_type: str, ref: str, body: str, endpoints: Sequence[Endpoint], now: float
    ) -> str | None:
        """Queue the event for `endpoints` unless it was queued before; its
        message id, or None when it had been."""
        args = ["once", event_type, ref, body, repr(now), ONCE_TTL_S, ""]
        return await self._enqueue(keys.once(event_type, ref), args, endpoints)

    async def enqueue_room(
        self,
        room: str,
        live: bool,
        event_type: str,
        body: str,
        endpoints: Sequence[Endpoint],
        now: float,
    ) -> str | None:
        """Queue room.live / room.ended when the room's live state changed
        since the webhooks last saw it."""
        args = ["room", event_type, room, body, repr(now), ONCE_TTL_S, "1" if live else "0"]
        return await self._enqueue(keys.room_live(room), args, endpoints)

    async def waiting(self) -> int:
        return int(await self.redis.zcard(keys.DUE))

    async def get(self, delivery_id: str) -> Delivery | None:
        fields = await self.redis.hgetall(keys.delivery(delivery_id))
        return Delivery.from_fields(fields) if fields else None

    async def claim(self, now: float, limit: int = 20) -> list[Delivery]:
        """What is due, each leased to the caller for LEASE_S."""
        found = await self.scripts.run(
            "accounts/outbox_claim", [keys.DUE], [repr(now), repr(now + LEASE_S), limit]
        )
        deliveries = []
        for delivery_id in found:
            delivery = await self.get(str(delivery_id))
            if delivery is None:  # expired or removed meanwhile
                await self.redis.zrem(keys.DUE, delivery_id)
            elif delivery.state == "pending":
                deliveries.append(delivery)
        return deliveries

    async def record(
        self,
        delivery: Delivery,
        outcome: str,
        now: float,
        status: int | None = None,
        error: str | None = None,
        next_at: float | None = None,
    ) -> int:
        """One attempt's outcome: "delivered", "retry" (at `next_at`) or "failed"."""
        args = [delivery.id, outcome, repr(now), status or "", (error or "")[:300]]
        args += [repr(next_at) if next_at is not None else "", SETTLED_TTL_S]
        return int(
            await self.scripts.run(
                "accounts/hook_result", [keys.DUE, keys.delivery(delivery.id)], args
            )
        )

    async def log(self, owner: str, endpoint_id: str, limit: int = LOG_KEEP) -> list[Delivery]:
        """The endpoint's deliveries, newest first."""
        ids = await self.redis.zrevrange(keys.log(owner, endpoint_id), 0, limit - 1)
        found = [await self.get(i) for i in ids]
        return [d for d in found if d is not None]

    async def forget(self, owner: str, endpoint_id: str) -> None:
        """A deleted endpoint's log (its queued deliveries fail at their turn)."""
        await self.redis.delete(keys.log(owner, endpoint_id))
