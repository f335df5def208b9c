"""The mail delivery job: every DELIVER_S, what is due in the outbox goes to
the transport (retried with backoff when it fails), and the gauge
`droproom_mail_waiting` says how many mails still wait."""

from aiohttp import web
from prometheus_client import Gauge

from server.accounts.resources import OUTBOX, SEND_MAIL
from server.appkeys import SCHEDULER
from server.metrics import METRICS

DELIVER_S = 0.5

WAITING: web.AppKey[Gauge] = web.AppKey("mail_waiting", Gauge)


async def deliver(app: web.Application, now: float) -> None:
    await app[OUTBOX].deliver(app[SEND_MAIL], now)
    app[WAITING].set(await app[OUTBOX].waiting())


def setup(app: web.Application) -> None:
    app[WAITING] = Gauge(
        "droproom_mail_waiting",
        "Mails in the outbox not yet handed to the transport",
        registry=app[METRICS].registry,
        multiprocess_mode="mostrecent",  # workers: each reads the one outbox
    )
    app[SCHEDULER].every(DELIVER_S, lambda now: deliver(app, now))
