"""Episodes of a room, its calendar, and its followers' mails (issue 12):
a creator schedules episodes that the lobby and the room show, anyone adds
them to a calendar (.ics parsed back with icalendar), signed-in listeners
follow a room and get one reminder before each episode and one mail when
the room goes live, whatever the number of processes sweeping."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import icalendar
import pytest

from accounts import keys as mail_keys
from server.accounts.reminders import sweep
from server.appkeys import SCHEDULER
from server.config import Settings
from tests.harness import Harness, free_port, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer, ask, code_in, exchange, text_of

HOUR = 3600


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url, reminder_lead_s=900)


class Shifted:
    """The server's clock, moved forward by `shift` seconds when a test says so."""

    def __init__(self, server: Harness) -> None:
        self.real = server.app[SCHEDULER].clock
        self.shift = 0.0
        server.app[SCHEDULER].clock = self

    def __call__(self) -> float:
        return self.real() + self.shift


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def sign_in(server: Harness, smtp: SmtpServer, address: str) -> str:
    before = len(smtp.inbox.messages)
    status, _ = await ask(server, address)
    assert status == 202
    mails = await smtp.inbox.wait_for(before + 1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200, body
    return str(body["token"])


async def creator(server: Harness, smtp: SmtpServer, address: str) -> str:
    before = len(smtp.inbox.messages)
    await server.admin_post("/api/v1/creators", {"email": address, "name": "Mia"})
    mails = await smtp.inbox.wait_for(before + 1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200
    return str(body["token"])


async def add_episode(
    server: Harness, room: str, token: str | None = None, **fields: Any
) -> dict[str, Any]:
    status, body = await server.request(
        "POST", f"/api/v1/rooms/{room}/episodes", json=fields, token=token, admin=token is None
    )
    assert status == 201, body
    return dict(body["episode"])


async def lobby_entry(server: Harness, room: str) -> dict[str, Any]:
    status, body = await server.request("GET", "/api/v1/rooms")
    assert status == 200
    return next(r for r in body["rooms"] if r["id"] == room)


def titles(episodes: list[dict[str, Any]]) -> list[str]:
    return [e["title"] for e in episodes]


# --- episodes ------------------------------------------------------------------


async def test_a_creator_schedules_episodes_that_the_lobby_and_the_room_show(
    server: Harness, smtp: SmtpServer
) -> None:
    token = await creator(server, smtp, "maker@example.com")
    status, _ = await server.request(
        "POST", "/api/v1/rooms", json={"id": "show", "title": "The show"}, token=token
    )
    assert status == 201
    listener = await server.connect("show", "fan")
    now = server.app[SCHEDULER].clock()
    later = await add_episode(
        server, "show", token, title="Episode 2", starts_at=int(now) + 2 * 86400
    )
    assert set(later) == {"id", "title", "starts_at", "ends_at"} and later["ends_at"] is None
    update = await listener.wait_for("room:updated", lambda d: d["room"]["episodes"])
    assert titles(update["room"]["episodes"]) == ["Episode 2"]
    sooner = await add_episode(
        server, "show", token, title="Episode 1", starts_at=int(now) + 86400,
        ends_at=int(now) + 86400 + 5400,
    )  # fmt: skip
    assert sooner["ends_at"] == int(now) + 86400 + 5400
    assert titles((await lobby_entry(server, "show"))["episodes"]) == ["Episode 1", "Episode 2"]
    status, listed = await server.request("GET", "/api/v1/rooms/show/episodes")
    assert status == 200 and listed["episodes"] == [sooner, later]
    late_comer = await server.connect("show", "late")
    [state] = late_comer.received("room:state")
    assert titles(state["room"]["episodes"]) == ["Episode 1", "Episode 2"]

    # Moving the second before the first reorders them; the room hears it.
    status, body = await server.request(
        "PATCH",
        f"/api/v1/rooms/show/episodes/{later['id']}",
        json={"title": "Pilot", "starts_at": int(now) + 3600},
        token=token,
    )
    assert status == 200 and body["episode"]["title"] == "Pilot"
    status, body = await server.request(
        "PATCH", f"/api/v1/rooms/show/episodes/{sooner['id']}", json={"ends_at": None},
        token=token,
    )  # fmt: skip
    assert status == 200 and body["episode"]["ends_at"] is None
    sooner = body["episode"]
    moved = await listener.wait_for(
        "room:updated", lambda d: titles(d["room"]["episodes"])[:1] == ["Pilot"]
    )
    assert titles(moved["room"]["episodes"]) == ["Pilot", "Episode 1"]

    status, _ = await server.request(
        "DELETE", f"/api/v1/rooms/show/episodes/{sooner['id']}", token=token
    )
    assert status == 200
    await listener.wait_for("room:updated", lambda d: titles(d["room"]["episodes"]) == ["Pilot"])
    assert titles((await lobby_entry(server, "show"))["episodes"]) == ["Pilot"]
    status, body = await server.request(
        "DELETE", f"/api/v1/rooms/show/episodes/{sooner['id']}", token=token
    )
    assert status == 404 and body["error"]["code"] == "not_found"


def _bad_payloads(now: int) -> list[dict[str, Any]]:
    return [
        {"starts_at": now + HOUR},
        {"title": "", "starts_at": now + HOUR},
        {"title": "x" * 121, "starts_at": now + HOUR},
        {"title": "\u200b\u200b", "starts_at": now + HOUR},
        {"title": "No time"},
        {"title": "Past", "starts_at": now - 10},
        {"title": "Too far", "starts_at": now + 3 * 366 * 86400},
        {"title": "Text time", "starts_at": "tomorrow"},
        {"title": "Bool time", "starts_at": True},
        {"title": "Ends first", "starts_at": now + HOUR, "ends_at": now + HOUR - 1},
        {"title": "Ends at once", "starts_at": now + HOUR, "ends_at": now + HOUR},
        {"title": "Too long", "starts_at": now + HOUR, "ends_at": now + HOUR + 8 * 86400},
    ]


async def test_bad_episodes_are_refused_with_a_message_and_change_nothing(
    server: Harness,
) -> None:
    await server.create_room(id="bad")
    kept = await add_episode(
        server, "bad", title="Kept", starts_at=int(server.app[SCHEDULER].clock()) + HOUR
    )
    now = int(server.app[SCHEDULER].clock())
    for payload in _bad_payloads(now):
        status, body = await server.request(
            "POST", "/api/v1/rooms/bad/episodes", json=payload, admin=True
        )
        assert status == 400, payload
        assert body["error"]["code"] == "invalid" and body["error"]["message"], payload
    for change in [{}, {"title": ""}, {"starts_at": now - 1}, {"ends_at": kept["starts_at"]}]:
        status, body = await server.request(
            "PATCH", f"/api/v1/rooms/bad/episodes/{kept['id']}", json=change, admin=True
        )
        assert status == 400 and body["error"]["code"] == "invalid", change
    status, body = await server.request(
        "POST", "/api/v1/rooms/nowhere/episodes", json={"title": "X", "starts_at": now + HOUR},
        admin=True,
    )  # fmt: skip
    assert status == 404
    for raw in ('{"title": "x", "starts_at": Infinity}', '{"title": "x", "starts_at": NaN}'):
        status, body = await server.request(
            "POST", "/api/v1/rooms/bad/episodes", data=raw, admin=True,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 400 and body["error"]["code"] == "invalid", raw
    status, listed = await server.request("GET", "/api/v1/rooms/bad/episodes")
    assert listed["episodes"] == [kept]
    assert (await lobby_entry(server, "bad"))["episodes"] == [kept]


async def test_only_the_rooms_staff_change_its_episodes(server: Harness, smtp: SmtpServer) -> None:
    owner = await creator(server, smtp, "owner@example.com")
    other = await creator(server, smtp, "other@example.com")
    assert (await server.request("POST", "/api/v1/rooms", json={"id": "mine", "title": "Mine"},
                                 token=owner))[0] == 201  # fmt: skip
    start = int(server.app[SCHEDULER].clock()) + HOUR
    payload = {"title": "Ep", "starts_at": start}
    path = "/api/v1/rooms/mine/episodes"
    assert (await server.request("POST", path, json=payload, token=other))[0] == 403
    listener = server.token("mine", "fan", "listener")
    assert (await server.request("POST", path, json=payload, token=listener))[0] == 403
    assert (await server.request("POST", path, json=payload))[0] == 401
    ep = await add_episode(server, "mine", server.token("mine", "cohost", "host"), **payload)
    one = f"{path}/{ep['id']}"
    assert (await server.request("PATCH", one, json={"title": "Mine!"}, token=other))[0] == 403
    assert (await server.request("DELETE", one, token=other))[0] == 403
    assert (await server.request("DELETE", one, token=listener))[0] == 403
    status, body = await server.request("GET", path)
    assert status == 200 and titles(body["episodes"]) == ["Ep"]
    assert (await server.request("GET", "/api/v1/rooms/nowhere/episodes"))[0] == 404


async def test_a_room_has_at_most_100_upcoming_episodes(server: Harness) -> None:
    await server.create_room(id="busy")
    start = int(server.app[SCHEDULER].clock()) + HOUR
    for i in range(100):
        await add_episode(server, "busy", title=f"E{i}", starts_at=start + i * HOUR)
    status, body = await server.request(
        "POST", "/api/v1/rooms/busy/episodes", json={"title": "One more", "starts_at": start},
        admin=True,
    )  # fmt: skip
    assert status == 409 and body["error"]["code"] == "limit_reached"
    status, body = await server.request("GET", "/api/v1/rooms/busy/episodes")
    assert len(body["episodes"]) == 100
    assert len((await lobby_entry(server, "busy"))["episodes"]) == 5  # a handful in the lobby


async def test_an_episode_that_ended_leaves_the_room(server: Harness) -> None:
    clock = Shifted(server)
    await server.create_room(id="ends")
    listener = await server.connect("ends", "fan", ttl_s=6 * HOUR)
    start = int(clock()) + HOUR
    await add_episode(server, "ends", title="Short", starts_at=start, ends_at=start + 600)
    await add_episode(server, "ends", title="Default", starts_at=start + 1200)
    clock.shift = HOUR + 601  # the first is over; the second runs for its default hour
    update = await listener.wait_for(
        "room:updated", lambda d: titles(d["room"]["episodes"]) == ["Default"]
    )
    assert update["room"]["id"] == "ends"
    clock.shift = HOUR + 1200 + HOUR + 1
    await listener.wait_for("room:updated", lambda d: d["room"]["episodes"] == [])
    assert (await lobby_entry(server, "ends"))["episodes"] == []
    assert (await server.request("GET", "/api/v1/rooms/ends/episodes"))[1]["episodes"] == []


# --- calendar ------------------------------------------------------------------


async def fetch_ics(server: Harness, room: str) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/v1/rooms/{room}/calendar.ics") as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def vevents(body: bytes) -> list[Any]:
    cal = icalendar.Calendar.from_ical(body)
    assert cal["VERSION"] == "2.0" and cal.get("PRODID")
    return list(cal.walk("VEVENT"))


async def test_the_calendar_lists_upcoming_episodes_in_utc(server: Harness) -> None:
    await server.create_room(id="cal", title="Night radio")
    now = int(server.app[SCHEDULER].clock())
    tricky = "Q&A, part 1; bring questions\nand a friend \\ o/"
    a = await add_episode(server, "cal", title=tricky, starts_at=now + 86400)
    b = await add_episode(
        server, "cal", title="Finale", starts_at=now + 2 * 86400, ends_at=now + 2 * 86400 + 5400
    )
    status, content_type, body = await fetch_ics(server, "cal")
    assert status == 200 and content_type == "text/calendar; charset=utf-8"
    assert b"\\;" in body and b"\\," in body and b"\\n" in body  # escaped on the wire
    first, second = vevents(body)
    assert str(first["SUMMARY"]) == tricky  # and read back as typed
    assert first["DTSTART"].dt == datetime.fromtimestamp(now + 86400, UTC)
    assert first["DTSTART"].dt.utcoffset() == timedelta(0)
    assert first["DURATION"].dt == timedelta(hours=1)  # no ends_at: the default length
    assert second["DTEND"].dt == datetime.fromtimestamp(now + 2 * 86400 + 5400, UTC)
    assert str(first["URL"]) == f"{server.settings.public_url}/r/cal"
    assert first.get("DTSTAMP") is not None
    assert first["UID"] != second["UID"]

    # Moving an episode keeps its UID: calendar apps update, never duplicate.
    uids = {a["id"]: str(first["UID"]), b["id"]: str(second["UID"])}
    status, _ = await server.request(
        "PATCH", f"/api/v1/rooms/cal/episodes/{a['id']}", json={"starts_at": now + 3 * 86400},
        admin=True,
    )  # fmt: skip
    assert status == 200
    moved = vevents((await fetch_ics(server, "cal"))[2])
    assert [str(e["SUMMARY"]) for e in moved] == ["Finale", tricky]
    assert str(moved[1]["UID"]) == uids[a["id"]] and str(moved[0]["UID"]) == uids[b["id"]]
    assert moved[1]["DTSTART"].dt == datetime.fromtimestamp(now + 3 * 86400, UTC)


async def test_the_calendar_of_an_unknown_room_is_404(server: Harness) -> None:
    await server.create_room(id="empty")
    status, _, body = await fetch_ics(server, "empty")
    assert status == 200 and vevents(body) == []
    assert (await fetch_ics(server, "nowhere"))[0] == 404


# --- follow and mails ----------------------------------------------------------


async def test_following_needs_a_signed_in_account(server: Harness, smtp: SmtpServer) -> None:
    await server.create_room(id="f1", title="First", guests=True)
    await server.create_room(id="f2", title="Second")
    status, guest = await server.request("POST", "/api/v1/rooms/f1/guest", json={"name": "G"})
    assert status == 201
    for token in (guest["token"], server.token("f1", "fan"), None):
        status, body = await server.request("POST", "/api/v1/rooms/f1/follow", token=token)
        assert status == 401 and body["error"]["code"] == "unauthorized"
    me = await sign_in(server, smtp, "fan@example.com")
    assert (await server.request("POST", "/api/v1/rooms/nowhere/follow", token=me))[0] == 404
    for room in ("f1", "f2", "f1"):
        status, body = await server.request("POST", f"/api/v1/rooms/{room}/follow", token=me)
        assert status == 200 and body == {"room": room, "following": True}
    status, body = await server.request("GET", "/api/v1/me/follows", token=me)
    assert status == 200 and [r["id"] for r in body["rooms"]] == ["f1", "f2"]
    assert body["rooms"][0]["title"] == "First" and "episodes" in body["rooms"][0]
    status, body = await server.request("GET", "/api/v1/rooms/f1/follow", token=me)
    assert status == 200 and body == {"room": "f1", "following": True}
    status, body = await server.request("DELETE", "/api/v1/rooms/f1/follow", token=me)
    assert status == 200 and body["following"] is False
    status, body = await server.request("GET", "/api/v1/rooms/f1/follow", token=me)
    assert status == 200 and body["following"] is False
    status, body = await server.request("GET", "/api/v1/me/follows", token=me)
    assert [r["id"] for r in body["rooms"]] == ["f2"]
    assert (await server.request("GET", "/api/v1/me/follows", token=guest["token"]))[0] == 401


def mails_to(smtp: SmtpServer, address: str, subject_start: str) -> list[EmailMessage]:
    return [
        m
        for m in smtp.inbox.messages
        if m["To"] == address and str(m["Subject"]).startswith(subject_start)
    ]


async def drained(server: Harness) -> None:
    redis = server.app_rooms_redis()

    async def empty() -> bool:
        return int(await redis.zcard(mail_keys.OUTBOX)) == 0

    await eventually(empty)


async def followers(server: Harness, smtp: SmtpServer, room: str) -> dict[str, str]:
    """Three signed-in listeners following `room`; the third unfollows again."""
    tokens = {}
    for name in ("ann", "bob", "cy"):
        address = f"{name}@example.com"
        tokens[address] = await sign_in(server, smtp, address)
        status, _ = await server.request(
            "POST", f"/api/v1/rooms/{room}/follow", token=tokens[address]
        )
        assert status == 200
    status, _ = await server.request(
        "DELETE", f"/api/v1/rooms/{room}/follow", token=tokens["cy@example.com"]
    )
    assert status == 200
    return tokens


async def test_followers_get_one_reminder_before_an_episode(
    server: Harness, smtp: SmtpServer, settings: Settings
) -> None:
    clock = Shifted(server)
    await server.create_room(id="remind", title="Morning show")
    await followers(server, smtp, "remind")
    start = int(clock()) + 16 * 60  # the lead is 15 minutes: due in one minute
    ep = await add_episode(server, "remind", title="Episode 7", starts_at=start)
    second = await start_server(settings.with_(port=free_port()))  # another process
    try:
        second.app[SCHEDULER].clock = clock
        await asyncio.sleep(1.5)  # both sweep a few times: nothing is due yet
        await drained(server)
        assert mails_to(smtp, "ann@example.com", "Starting soon") == []
        before = len(smtp.inbox.messages)  # counted before: the mails may go out at once
        clock.shift = 61
        # sweeps at once on both processes (besides their scheduled ones)
        now = clock()
        await asyncio.gather(*(sweep(s.app, now) for s in (server, second, server, second)))
        await smtp.inbox.wait_for(before + 2)
        await asyncio.sleep(1.5)
        await drained(server)
    finally:
        await stop_server(second)
    for address in ("ann@example.com", "bob@example.com"):
        [mail] = mails_to(smtp, address, "Starting soon")
        text = text_of(mail)
        assert "Episode 7" in text and "Morning show" in text
        assert "/r/remind" in text and "Unfollow" in text
    assert mails_to(smtp, "cy@example.com", "Starting soon") == []  # unfollowed

    # Moved to another day: one reminder again before the new time.
    status, _ = await server.request(
        "PATCH", f"/api/v1/rooms/remind/episodes/{ep['id']}",
        json={"starts_at": start + 86400}, admin=True,
    )  # fmt: skip
    assert status == 200
    await asyncio.sleep(1.2)
    assert len(mails_to(smtp, "ann@example.com", "Starting soon")) == 1
    clock.shift = 61 + 86400
    await eventually(lambda: _count(smtp, "ann@example.com", "Starting soon", 2))
    await asyncio.sleep(1.2)
    await drained(server)
    assert len(mails_to(smtp, "ann@example.com", "Starting soon")) == 2


async def _count(smtp: SmtpServer, address: str, subject: str, n: int) -> bool:
    return len(mails_to(smtp, address, subject)) >= n


async def test_a_deleted_episode_sends_no_reminder(server: Harness, smtp: SmtpServer) -> None:
    clock = Shifted(server)
    await server.create_room(id="gone", title="Gone")
    tokens = await followers(server, smtp, "gone")
    assert tokens
    ep = await add_episode(server, "gone", title="Cancelled", starts_at=int(clock()) + 16 * 60)
    status, _ = await server.request(
        "DELETE", f"/api/v1/rooms/gone/episodes/{ep['id']}", admin=True
    )
    assert status == 200
    clock.shift = 61
    await asyncio.sleep(1.5)
    await drained(server)
    assert mails_to(smtp, "ann@example.com", "Starting soon") == []


async def test_followers_hear_once_when_the_room_goes_live(
    server: Harness, smtp: SmtpServer
) -> None:
    clock = Shifted(server)
    await server.create_room(id="onair", title="On air")
    await followers(server, smtp, "onair")

    async def set_live(live: bool) -> None:
        status, _ = await server.request(
            "PATCH", "/api/v1/rooms/onair", json={"live": live}, admin=True
        )
        assert status == 200

    before = len(smtp.inbox.messages)  # counted before: the mails may go out at once
    await set_live(True)
    await smtp.inbox.wait_for(before + 2)
    await set_live(True)  # still live: no news
    await server.request("PATCH", "/api/v1/rooms/onair", json={"title": "On air!"}, admin=True)
    clock.shift = 600
    await set_live(False)
    await set_live(True)  # a flap within half an hour
    await asyncio.sleep(1.2)
    await drained(server)
    for address in ("ann@example.com", "bob@example.com"):
        [mail] = mails_to(smtp, address, "Live now")
        assert "/r/onair" in text_of(mail) and "Unfollow" in text_of(mail)
    assert mails_to(smtp, "cy@example.com", "Live now") == []

    clock.shift = 600 + 1801  # live again, much later: a new mail
    await set_live(False)
    await set_live(True)
    await eventually(lambda: _count(smtp, "ann@example.com", "Live now", 2))
    await asyncio.sleep(1.2)
    await drained(server)
    assert len(mails_to(smtp, "bob@example.com", "Live now")) == 2


async def test_a_publisher_on_stage_makes_the_room_live_and_mails_followers(
    server: Harness, smtp: SmtpServer
) -> None:
    """The media engine's hook (a publisher's peer connected) is what turns
    `live` on in production: followers hear it the same way."""
    from server.audio.live import on_publishing

    await server.create_room(id="stage", title="Stage room")
    await followers(server, smtp, "stage")
    started = on_publishing(server.app)
    before = len(smtp.inbox.messages)  # counted before: the mails may go out at once
    await started("stage")
    await started("stage")  # a second publisher: the room was live already
    await smtp.inbox.wait_for(before + 2)
    await asyncio.sleep(1.2)
    await drained(server)
    for address in ("ann@example.com", "bob@example.com"):
        [mail] = mails_to(smtp, address, "Live now")
        assert "Stage room is live now." in text_of(mail)
    assert mails_to(smtp, "cy@example.com", "Live now") == []
