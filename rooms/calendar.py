"""A room's upcoming episodes as an iCalendar file (RFC 5545), built with the
`icalendar` library (which escapes text and folds long lines).

Every episode keeps one UID for its life (its id and the room's), so a
calendar app that subscribed updates the event when it moves instead of
adding a second one. Times are in UTC. Must not import any framework.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from rooms.episodes import Episode
from rooms.model import Room

PRODID = "-//droproom//episodes//EN"
UID_DOMAIN = "droproom"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def uid(room_id: str, episode_id: str) -> str:
    return f"{episode_id}.{room_id}@{UID_DOMAIN}"


def _vevent(room: Room, ep: Episode, room_url: str, now: float) -> Event:
    event = Event()
    event.add("uid", uid(room.id, ep.id))
    event.add("dtstamp", _utc(now))
    event.add("dtstart", _utc(ep.starts_at))
    if ep.ends_at is not None:
        event.add("dtend", _utc(ep.ends_at))
    else:
        event.add("duration", timedelta(seconds=ep.end - ep.starts_at))
    event.add("summary", ep.title)
    event.add("description", f"{room.title}\n{room_url}")
    event.add("url", room_url)
    event.add("location", room_url)
    return event


def ics(room: Room, episodes: Iterable[Episode], room_url: str, now: float) -> bytes:
    """The calendar of `room`: one VEVENT per episode given."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", room.title)
    for ep in episodes:
        cal.add_component(_vevent(room, ep, room_url, now))
    return cal.to_ical()
