"""The outbox: mails wait in Redis until a transport took them. Must not
import any framework.

Enqueueing is one MULTI (the mail and its place in the queue); every key is
under the `{mail}` tag, so on a Cluster the outbox lives in one slot. A scheduler
job claims what is due (one script pushes each claimed mail out by a lease,
so another worker does not send it meanwhile), hands each to the transport,
and then removes it (sent) or schedules the next try with exponential
backoff; after `max_tries` the mail is dropped and logged.
"""

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from accounts import keys
from accounts.mail import Mail
from kernel.lua import Scripts

logger = logging.getLogger(__name__)

Send = Callable[[Mail, float], Awaitable[None]]
ONCE_TTL_S = 30 * 86400  # how long "a receipt of this order was sent" is remembered


class DeliveryFailed(Exception):
    """A transport could not hand the mail over (it will be tried again)."""


@dataclass
class Backoff:
    base_s: float = 2.0
    cap_s: float = 600.0
    max_tries: int = 10
    lease_s: float = 120.0


class Outbox:
    def __init__(self, redis: aioredis.Redis, backoff: Backoff | None = None) -> None:
        self.redis: Any = redis
        self.scripts = Scripts(redis)
        self.backoff = backoff or Backoff()

    async def enqueue(self, mail: Mail, now: float) -> str:
        mail_id = secrets.token_hex(8)
        async with self.redis.pipeline(transaction=True) as tx:
            tx.hset(keys.mail(mail_id), mapping={**mail.as_fields(), "created_at": repr(now)})
            tx.zadd(keys.OUTBOX, {mail_id: now})
            await tx.execute()
        return mail_id

    async def enqueue_once(
        self, kind: str, ref: str, mail: Mail, now: float, remember_s: int = ONCE_TTL_S
    ) -> bool:
        """Enqueue unless a mail of `kind` about `ref` was enqueued in the last
        `remember_s` (the mark and the mail in one script: never one without
        the other)."""
        mail_id = secrets.token_hex(8)
        done = await self.scripts.run(
            "accounts/outbox_once",
            [keys.mail_sent(kind, ref), keys.OUTBOX, keys.mail(mail_id)],
            [mail_id, repr(now), remember_s, mail.to, mail.subject, mail.text, mail.html],
        )
        return bool(done)

    async def waiting(self) -> int:
        return int(await self.redis.zcard(keys.OUTBOX))

    async def _claim(self, now: float, limit: int) -> list[str]:
        lease_until = now + self.backoff.lease_s
        found = await self.scripts.run(
            "accounts/outbox_claim", [keys.OUTBOX], [repr(now), repr(lease_until), limit]
        )
        return [str(x) for x in found]

    async def _done(self, mail_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as tx:
            tx.zrem(keys.OUTBOX, mail_id)
            tx.delete(keys.mail(mail_id))
            await tx.execute()

    async def _retry(self, mail_id: str, now: float, reason: str) -> None:
        b = self.backoff
        tries = await self.scripts.run(
            "accounts/outbox_retry",
            [keys.OUTBOX, keys.mail(mail_id)],
            [mail_id, repr(now), b.base_s, b.cap_s, b.max_tries],
        )
        if int(tries) < 0:
            logger.error("mail %s given up after %d tries: %s", mail_id, -int(tries), reason)
        else:
            logger.warning("mail %s not sent (try %d), retrying: %s", mail_id, tries, reason)

    async def deliver(self, send: Send, now: float, limit: int = 50) -> int:
        """Send what is due; the number of mails sent."""
        sent = 0
        for mail_id in await self._claim(now, limit):
            fields = await self.redis.hgetall(keys.mail(mail_id))
            if not fields:
                await self._done(mail_id)
                continue
            try:
                await send(Mail.from_fields(fields), now)
            except DeliveryFailed as exc:
                await self._retry(mail_id, now, str(exc))
                continue
            await self._done(mail_id)
            sent += 1
        return sent
