"""The media engine's sessions as the rooms and the operators see them:
the room's `live` flag follows its stage's publishers (live grace, see
`rooms/live.py`), and /metrics counts open and refused sessions.

aiohttp-side glue only: the rules are in `rooms/live.py`, the sessions in
`media/`.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from media.caps import Scope
from media.engine import MediaEngine, PublishingCallback
from rooms import lifecycle, live
from server.appkeys import EMITTER, ROOMS, SCHEDULER, SETTINGS
from server.scheduler import Job


def on_publishing(app: web.Application) -> PublishingCallback:
    """The engine's hook: a publisher's peer connected, so the room is live."""

    async def started(room: str) -> None:
        grace, now = app[SETTINGS].live_grace_s, app[SCHEDULER].clock()
        await app[EMITTER].emit(await live.started_publishing(app[ROOMS], room, now, grace))

    return started


def schedule_sweep(app: web.Application, engine: MediaEngine) -> None:
    """Every quarter of the grace (0.1 to 5 s)."""
    grace = app[SETTINGS].live_grace_s
    app[SCHEDULER].every(min(max(grace / 4, 0.1), 5.0), _live_sweep(app, engine))


def _live_sweep(app: web.Application, engine: MediaEngine) -> Job:
    """Restarts the grace of rooms whose publisher this process holds and
    ends `live` for rooms nobody has published in for the grace."""
    seeded = False

    async def sweep(now: float) -> None:
        nonlocal seeded
        store, grace = app[ROOMS], app[SETTINGS].live_grace_s
        if not seeded:  # rooms already live when this process started
            rooms = await lifecycle.list_rooms(store)
            await live.index_live_rooms(store, [r.id for r in rooms if r.live])
            seeded = True
        here = engine.rooms_publishing()
        await live.still_publishing(store, here, now, grace)
        await app[EMITTER].emit(await live.end_idle(store, now, grace, here))

    return sweep


class SessionCollector(Collector):
    """Open WHIP/WHEP sessions by kind and refused WHEP offers by cap, read
    from the engine at scrape time."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        sessions = GaugeMetricFamily(
            "droproom_media_sessions", "Open media sessions", labels=["kind"]
        )
        for kind, count in self.engine.session_counts().items():
            sessions.add_metric([str(kind)], count)
        refused = CounterMetricFamily(
            "droproom_media_sessions_refused",
            "WHEP offers refused by a session cap",
            labels=["scope"],
        )
        for scope in Scope:
            refused.add_metric([str(scope)], self.engine.caps.refused[scope])
        return iter([sessions, refused])
