"""Mails to a room's followers, through the accounts outbox:

- a reminder `reminder_lead_s` before each episode: the sweep (every
  `SWEEP_S` on every process's scheduler) reads the due reminders and mails
  each follower once (a dedupe mark per episode, start time and follower,
  so two processes sweeping at once, or a sweep run again after a crash,
  never send twice; an episode moved to another time is reminded of again);
- a went-live mail when the room's `live` flag turns on (an emitter
  listener: every process sees what it announces; `rooms.follows.announced`
  decides once, and a room that flaps within half an hour sends once).
"""

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


def room_url(app: web.Application, room_id: str) -> str:
    return f"{app[SETTINGS].public_url}/r/{room_id}"


async def _mail_followers(
    app: web.Application, room: Room, kind: str, ref: str, make: Callable[[str], Mail], now: float
) -> int:
    """Enqueue one mail per follower (at most once per `kind` and `ref`)."""
    queued = 0
    async for account_id in follows.followers(app[ROOMS], room.id):
        account = await app[ACCOUNTS].get(account_id)
        if account is None:
            continue
        mail = make(account.email)
        marked = f"{ref}:{account_id}"
        if await app[OUTBOX].enqueue_once(kind, marked, mail, now, REMINDED_TTL_S):
            queued += 1
    return queued


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


async def on_event(app: web.Application, event: Event) -> None:
    if event.name != ROOM_UPDATED:
        return
    wire = event.payload.get("room")
    if not isinstance(wire, dict) or "live" not in wire:
        return
    now = app[SCHEDULER].clock()
    if not await follows.announced(app[ROOMS], event.room, bool(wire["live"]), now):
        return
    room = await app[ROOMS].get_room(event.room)
    if room is None:
        return
    url = room_url(app, room.id)

    def make(to: str) -> Mail:
        return went_live_mail(to, room.title, url)

    queued = await _mail_followers(app, room, "live", f"{room.id}:{now!r}", make, now)
    logger.info("room %s: went-live mail queued for %d followers", room.id, queued)


def setup(app: web.Application) -> None:
    async def listener(event: Event) -> None:
        await on_event(app, event)

    app[EMITTER].listeners.append(listener)
    app[SCHEDULER].every(SWEEP_S, lambda now: sweep(app, now))
