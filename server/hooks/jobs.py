"""The webhook delivery job: every DELIVER_S, what is due is sent (at most
BATCH at once, side by side, so one slow target does not hold the others),
signed with the endpoint's secrets of the moment, and its outcome recorded:
delivered on a 2xx, else retried on accounts.hooks' schedule with jitter,
then failed. An endpoint deleted meanwhile fails its deliveries at once.
Metrics: `droproom_webhook_attempts_total{outcome}` (delivered, retry,
failed) and `droproom_webhooks_waiting` (deliveries queued, due or not)."""

import asyncio
import logging
import random

from aiohttp import web
from prometheus_client import Counter, Gauge

from accounts import hook_signing, hooks
from accounts.hook_queue import Delivery
from server.appkeys import SCHEDULER, SETTINGS
from server.hooks import sender
from server.hooks.resources import HOOK_QUEUE, HOOKS
from server.metrics import METRICS

logger = logging.getLogger(__name__)

DELIVER_S = 0.5
BATCH = 20

ATTEMPTS: web.AppKey[Counter] = web.AppKey("webhook_attempts", Counter)
WAITING: web.AppKey[Gauge] = web.AppKey("webhooks_waiting", Gauge)


async def attempt(app: web.Application, delivery: Delivery, now: float) -> None:
    queue = app[HOOK_QUEUE]
    endpoint = await app[HOOKS].get(delivery.owner, delivery.endpoint)
    if endpoint is None:
        await queue.record(delivery, "failed", now, error="the endpoint was deleted")
        app[ATTEMPTS].labels("failed").inc()
        return
    headers = hook_signing.headers(
        endpoint.signing_secrets(now), delivery.msg_id, int(now), delivery.body
    )
    allow = app[SETTINGS].webhook_allow_private
    out = await sender.post(endpoint.url, delivery.body, headers, allow, hooks.TIMEOUT_S)
    if out.ok:
        await queue.record(delivery, "delivered", now, status=out.status)
        app[ATTEMPTS].labels("delivered").inc()
        return
    next_at = hooks.retry_at(delivery.attempts + 1, now, random.random())
    outcome = "retry" if next_at is not None else "failed"
    await queue.record(delivery, outcome, now, out.status, out.error, next_at)
    app[ATTEMPTS].labels(outcome).inc()
    logger.warning(
        "webhook %s to endpoint %s (%s) not delivered, try %d: %s",
        delivery.msg_id,
        endpoint.id,
        delivery.owner,
        delivery.attempts + 1,
        out.error,
    )


async def deliver(app: web.Application, now: float) -> int:
    """Send what is due; how many were tried."""
    due = await app[HOOK_QUEUE].claim(now, BATCH)
    if due:
        async with asyncio.TaskGroup() as group:
            for delivery in due:
                group.create_task(attempt(app, delivery, now))
    app[WAITING].set(await app[HOOK_QUEUE].waiting())
    return len(due)


def setup(app: web.Application) -> None:
    registry = app[METRICS].registry
    app[ATTEMPTS] = Counter(
        "droproom_webhook_attempts",
        "Outbound webhook delivery attempts, by outcome (delivered, retry, failed)",
        ["outcome"],
        registry=registry,
    )
    app[WAITING] = Gauge(
        "droproom_webhooks_waiting",
        "Outbound webhook deliveries queued",
        registry=registry,
        multiprocess_mode="mostrecent",  # workers: each reads the one queue
    )

    async def deliver_due(now: float) -> None:
        await deliver(app, now)

    app[SCHEDULER].every(DELIVER_S, deliver_due)
