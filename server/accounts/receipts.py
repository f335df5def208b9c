"""A receipt mail when an order is announced paid (`order:updated` with
status `paid`): to the order's `email`, or else to the buyer's account
address; once per order (a dedupe key in the outbox), linking to the
library (`<public URL>/me`), never to the files. It listens to what the
emitter sends, so settlement stays as it is."""

import logging
from typing import Any

from aiohttp import web

from accounts import identities
from accounts.mail import receipt_mail
from commerce.events import ORDER_UPDATED
from kernel.events import Event
from server.accounts.resources import OUTBOX
from server.appkeys import ACCOUNTS, EMITTER, SCHEDULER, SETTINGS

logger = logging.getLogger(__name__)


async def _address(app: web.Application, order: dict[str, Any], identity: str) -> str | None:
    email = order.get("email")
    if isinstance(email, str) and email:
        return email
    if identities.is_account(identity):
        account = await app[ACCOUNTS].get(identity)
        return account.email if account is not None else None
    return None


async def on_event(app: web.Application, event: Event) -> None:
    if event.name != ORDER_UPDATED or event.identity is None:
        return
    order = event.payload.get("order")
    if not isinstance(order, dict) or order.get("status") != "paid" or not order.get("id"):
        return
    to = await _address(app, order, event.identity)
    if to is None:
        return
    mail = receipt_mail(to, order, app[SETTINGS].public_url + "/me")
    ref = f"{event.room}:{order['id']}"
    if await app[OUTBOX].enqueue_once("receipt", ref, mail, app[SCHEDULER].clock()):
        logger.info("room %s: receipt of order %s queued", event.room, order["id"])


def setup(app: web.Application) -> None:
    async def listener(event: Event) -> None:
        await on_event(app, event)

    app[EMITTER].listeners.append(listener)
