"""Following a room: a signed-in account asks for a reminder mail before
each of the room's episodes and when the room goes live.

Two sets, each on its own slot: the room's followers (what the mails read)
and the account's follows (`GET /me/follows`). Following writes the room's
side first and unfollowing removes it first, so a mail never goes to
someone who no longer sees the room in their list. Both steps are
idempotent, so a retry finishes a half-done change. Must not import any
framework.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from kernel.errors import LimitReached, NotFound
from rooms import keys
from rooms.model import Room
from rooms.store import RoomStore

MAX_FOLLOWS = 500  # rooms one account may follow


async def follow(store: RoomStore, room_id: str, account_id: str) -> Room:
    room = await store.get_room(room_id)
    if room is None:
        raise NotFound("no such room")
    mine = keys.follows(account_id)
    if not await store.redis.sismember(mine, room_id):
        if await store.redis.scard(mine) >= MAX_FOLLOWS:
            raise LimitReached(f"an account follows at most {MAX_FOLLOWS} rooms")
    await store.redis.sadd(keys.followers(room_id), account_id)
    await store.redis.sadd(mine, room_id)
    return room


async def unfollow(store: RoomStore, room_id: str, account_id: str) -> None:
    await store.redis.srem(keys.followers(room_id), account_id)
    await store.redis.srem(keys.follows(account_id), room_id)


async def is_following(store: RoomStore, room_id: str, account_id: str) -> bool:
    return bool(await store.redis.sismember(keys.followers(room_id), account_id))


async def followed(store: RoomStore, account_id: str) -> list[Room]:
    """The rooms the account follows (rooms gone since are left out)."""
    ids = sorted(await store.redis.smembers(keys.follows(account_id)))
    rooms = [await store.get_room(room_id) for room_id in ids]
    return [room for room in rooms if room is not None]


async def followers(store: RoomStore, room_id: str, batch: int = 500) -> AsyncIterator[str]:
    """Every follower's account id, read in batches (SSCAN)."""
    async for account_id in store.redis.sscan_iter(keys.followers(room_id), count=batch):
        yield str(account_id)


async def count(store: RoomStore, room_id: str) -> int:
    return int(await store.redis.scard(keys.followers(room_id)))


LIVE_MAIL_WINDOW_S = 1800  # a room that goes live again within this sends no new mail
LIVE_NOTICE_TTL_S = 30 * 86400


async def announced(store: RoomStore, room_id: str, live: bool, now: float) -> bool:
    """The room was announced live or not; True when this is the start its
    followers hear about (once across processes, once per window): a
    went-live mail is then due (`due_live_mails`)."""
    went_live = await store.run(
        "rooms/live_notice",
        [keys.live_notice(room_id)],
        ["1" if live else "0", now, LIVE_MAIL_WINDOW_S, LIVE_NOTICE_TTL_S],
    )
    if went_live:
        await store.redis.zadd(keys.LIVE_MAILS, {LiveMail(room_id, now).member: now})
    return bool(went_live)


@dataclass(frozen=True, slots=True)
class LiveMail:
    """A went-live mail to a room's followers, due since `at`."""

    room: str
    at: float

    @property
    def member(self) -> str:
        return f"{self.room}|{self.at!r}"


async def due_live_mails(store: RoomStore, now: float, limit: int = 100) -> list[LiveMail]:
    rows = await store.redis.zrangebyscore(
        keys.LIVE_MAILS, "-inf", now, start=0, num=limit, withscores=True
    )
    return [LiveMail(str(member).partition("|")[0], float(score)) for member, score in rows]


async def live_mail_done(store: RoomStore, mail: LiveMail) -> None:
    await store.run("rooms/due_take", [keys.LIVE_MAILS], [mail.member, mail.at])
