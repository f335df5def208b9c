"""Mails to a room's followers, through the accounts outbox:

- a reminder `reminder_lead_s` before each episode: the sweep (every
  `SWEEP_S` on every process's scheduler) reads the due reminders and mails
  each follower once (a dedupe mark per episode, start time and follower,
  so two processes sweeping at once, or a sweep run again after a crash,
  never send twice; an episode moved to another time is reminded of again);
- a went-live mail when the room's `live` flag turns on (an emitter
  listener: every process sees what it announces; `rooms.follows.announced`
  decides once, and a room that flaps within half an hour sends once); the
  mails themselves go out from the same sweep, so the request or the media
  hook that made the room live does not wait on its followers.
"""

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from accounts.mail import Mail, episode_reminder_mail, went_live_mail
from kernel.events import Event
from rooms import episodes, follows
from rooms.episodes import Due, DueItem
from rooms.events import ROOM_UPDATED
from rooms.model import Room
from server.accounts.resources import OUTBOX
from server.appkeys import ACCOUNTS, EMITTER, ROOMS, SCHEDULER, SETTINGS

logger = logging.getLogger(__name__)

SWEEP_S = 1.0
REMINDED_TTL_S = 8 * 86400  # a reminder mark outlives its episode
BATCH = 100  # followers mailed concurrently

MailFor = Callable[[str], Mail]  # the mail to one follower's address


def room_url(app: web.Application, room_id: str) -> str:
    return f"{app[SETTINGS].public_url}/r/{room_id}"


async def _mail_one(
    app: web.Application, account_id: str, kind: str, ref: str, make: MailFor, now: float
) -> bool:
    account = await app[ACCOUNTS].get(account_id)
    if account is None:
        return False
    mail = make(account.email)
    return await app[OUTBOX].enqueue_once(kind, f"{ref}:{account_id}", mail, now, REMINDED_TTL_S)


async def _mail_followers(
    app: web.Application, room: Room, kind: str, ref: str, make: MailFor, now: float
) -> int:
    """Enqueue one mail per follower (at most once per `kind` and `ref`),
    `BATCH` followers at a time."""
    queued, batch = 0, []
    async for account_id in follows.followers(app[ROOMS], room.id):
        batch.append(account_id)
        if len(batch) >= BATCH:
            done = await asyncio.gather(*(_mail_one(app, a, kind, ref, make, now) for a in batch))
            queued, batch = queued + sum(done), []
    done = await asyncio.gather(*(_mail_one(app, a, kind, ref, make, now) for a in batch))
    return queued + sum(done)


async def remind(app: web.Application, item: DueItem, now: float) -> None:
    store = app[ROOMS]
    ep = await episodes.get(store, item.room, item.episode, now)
    room = await store.get_room(item.room)
    if ep is None or room is None or ep.starts_at <= now:
        return  # gone, or already started (the went-live mail covers it)
    url = room_url(app, room.id)

    def make(to: str) -> Mail:
        return episode_reminder_mail(to, room.title, ep.title, ep.starts_at, url)

    ref = f"{room.id}:{ep.id}:{ep.starts_at}"
    queued = await _mail_followers(app, room, "reminder", ref, make, now)
    logger.info("room %s: episode %s reminder queued for %d followers", room.id, ep.id, queued)


async def sweep(app: web.Application, now: float) -> None:
    store = app[ROOMS]
    for item in await episodes.due(store, Due.REMIND, now):
        await remind(app, item, now)
        await episodes.done(store, item)
    for due in await follows.due_live_mails(store, now):
        await went_live(app, due, now)
        await follows.live_mail_done(store, due)


async def on_event(app: web.Application, event: Event) -> None:
    """Every `room:updated` this process sends: a start of `live` makes a
    went-live mail due (sent by the sweep, off the path that announced it)."""
    if event.name != ROOM_UPDATED:
        return
    wire = event.payload.get("room")
    if isinstance(wire, dict) and "live" in wire:
        live = bool(wire["live"])
        await follows.announced(app[ROOMS], event.room, live, app[SCHEDULER].clock())


async def went_live(app: web.Application, due: follows.LiveMail, now: float) -> None:
    room = await app[ROOMS].get_room(due.room)
    if room is None:
        return
    url = room_url(app, room.id)

    def make(to: str) -> Mail:
        return went_live_mail(to, room.title, url)

    queued = await _mail_followers(app, room, "live", f"{room.id}:{due.at!r}", make, now)
    logger.info("room %s: went-live mail queued for %d followers", room.id, queued)


def setup(app: web.Application) -> None:
    async def listener(event: Event) -> None:
        await on_event(app, event)

    app[EMITTER].listeners.append(listener)
    app[SCHEDULER].every(SWEEP_S, lambda now: sweep(app, now))
