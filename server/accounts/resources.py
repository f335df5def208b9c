"""The accounts feature's long-lived resources: the account store (on the
rooms' text-mode Redis client), the outbox, and the mail transport (SMTP
when `DROPROOM_SMTP_URL` is set, else `.eml` files under the data dir)."""

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from accounts.eml import EmlTransport
from accounts.mail import Mail
from accounts.outbox import Outbox
from accounts.smtp import SmtpTransport
from accounts.store import AccountStore
from server.appkeys import ACCOUNTS, ROOMS, SETTINGS
from server.config import Settings

Send = Callable[[Mail, float], Awaitable[None]]

OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox", Outbox)
SEND_MAIL: web.AppKey[Send] = web.AppKey("send_mail")


def transport(settings: Settings) -> Send:
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url, settings.mail_from).send
    return EmlTransport(settings.mail_dir, settings.mail_from).send


async def accounts_ctx(app: web.Application) -> AsyncIterator[None]:
    redis = app[ROOMS].redis  # text responses, already open
    app[ACCOUNTS] = AccountStore(redis)
    app[OUTBOX] = Outbox(redis)
    app[SEND_MAIL] = transport(app[SETTINGS])
    yield
