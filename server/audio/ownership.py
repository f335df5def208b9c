"""Who serves a room's media in this process: the owner side of the room's
media lease (rooms.media_lease).

Each process has a random holder token and the endpoint it announces
(`{node, worker, url, region}`: url is `DROPROOM_NODE_URL`, else
`DROPROOM_PUBLIC_URL`, else `http://<host>:<port>` of this node; region is
`DROPROOM_REGION`). The
process that opens a room's media (the first WHIP publish here, or a tone
played) takes the room's lease, renews it every ttl/3 while the room's media
is open here, and gives it up once the room's media has closed. A renewal
that finds the lease held by another (ours lapsed while this process was
paused or cut off) drops the room's media here at once: the recorder stops
writing first, then every session of the room closes (publishers reconnect
and reach the owner). Between renewals the recorder writes only while the
last renewal is younger than the ttl (counted from when it was sent), so a
process that wakes up from a pause never writes for a lease it may have lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as MetricCounter

from media.engine import MediaEngine
from rooms import media_lease
from rooms.media_lease import MediaLease
from rooms.store import RoomStore
from server.config import Settings

logger = logging.getLogger(__name__)

LEASE_LOST = "media lease lost"
# how long closing waits for the renewal task to end (a cancel Python 3.11's
# asyncio.timeout turns into an error is survived by its loop: the flag ends it)
STOP_WAIT_S = 5.0


def endpoint_of(settings: Settings) -> dict[str, Any]:
    """What this process announces as the holder of a room's media."""
    return {
        "node": settings.node,
        "worker": settings.worker,
        "url": settings.node_url,
        "region": settings.region,
    }


class OwnershipMetrics:
    """Counters of the media lease's routing (registered on the app's registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.routed = MetricCounter(
            "droproom_media_routed",
            "WHIP/WHEP requests sent to the process that serves them, by outcome (handed:"
            " to another worker of this node; redirected: 307 to another node; gone: 503"
            " or 404, that process is no more)",
            ["outcome"],
            registry=registry,
        )
        self.leases_lost = MetricCounter(
            "droproom_media_leases_lost",
            "Rooms whose media this process dropped because another process holds their lease",
            registry=registry,
        )


@dataclass
class _Held:
    token: int
    valid_until: float  # loop time: when our last renewal sent lapses at the latest


class Ownership:
    """The rooms whose media this process holds, and their renewal."""

    def __init__(
        self,
        store: Callable[[], RoomStore],
        engine: MediaEngine,
        settings: Settings,
        clock: Callable[[], float] | None = None,
        metrics: OwnershipMetrics | None = None,
    ) -> None:
        self.metrics = metrics or OwnershipMetrics(CollectorRegistry())
        self._store = store
        self.engine = engine
        self.holder = secrets.token_urlsafe(12)
        self.endpoint = endpoint_of(settings)
        self.ttl_s = settings.media_lease_ttl_s
        self._clock = clock or asyncio.get_running_loop().time
        self.held: dict[str, _Held] = {}
        self._opening: Counter[str] = Counter()  # rooms whose media is being opened here
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        engine.may_record = self.may_serve

    # --- taking -----------------------------------------------------------
    async def claim(self, room: str) -> MediaLease:
        """Take the room's lease when free or renew it when ours; says who
        holds it now (`held` is whether we do)."""
        sent = self._clock()
        lease = await media_lease.hold(self._store(), room, self.holder, self.endpoint, self.ttl_s)
        if lease.held:
            held = self.held.get(room)
            if held is None or held.token != lease.token:
                logger.info("room %s: media lease taken (token %d)", room, lease.token)
                self.held[room] = _Held(lease.token, sent + self.ttl_s)
            else:
                held.valid_until = sent + self.ttl_s
            self._start()
        return lease

    @contextlib.asynccontextmanager
    async def opening(self, room: str) -> AsyncIterator[None]:
        """While a room's media is being opened here (a WHIP offer answered,
        a tone decoded), a renewal keeps its lease though nothing is open yet."""
        self._opening[room] += 1
        try:
            yield
        finally:
            self._opening[room] -= 1
            if not self._opening[room]:
                del self._opening[room]

    def may_serve(self, room: str) -> bool:
        """Whether our lease of the room is certainly still ours right now."""
        held = self.held.get(room)
        return held is not None and self._clock() < held.valid_until

    # --- renewing ---------------------------------------------------------
    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="media-lease-renewal")

    def watch(self) -> None:
        """Keep renewing, and keep checking the rooms whose media is open here
        without our lease (a speaker listening before anyone publishes)."""
        self._start()

    async def _run(self) -> None:
        while (self.held or self.engine.rooms) and not self._closing:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.renew()
            except Exception:
                logger.exception("media lease renewal failed")

    async def renew(self) -> None:
        """One round: renew the rooms whose media is open here, give up the
        others, drop the rooms whose lease another process holds now."""
        for room, held in list(self.held.items()):
            if room not in self.engine.rooms and room not in self._opening:
                await self.release(room)
                continue
            sent = self._clock()
            lease = await media_lease.hold(
                self._store(), room, self.holder, self.endpoint, self.ttl_s
            )
            if lease.held:
                if lease.token != held.token:  # it lapsed and nobody took it: a new term
                    logger.warning("room %s: media lease lapsed, taken again", room)
                    held.token = lease.token
                held.valid_until = sent + self.ttl_s
            else:
                await self._lost(room, held, lease)
        await self._drop_mixed_elsewhere()

    async def _drop_mixed_elsewhere(self) -> None:
        """A room whose media is open here without our lease (opened before
        anyone held it, or by an earlier process of this worker's name) while
        another process holds it: its listeners here would hear a mix nobody
        feeds. Its sessions close; the clients come back and are routed to
        the holder (or served as its edges)."""
        for room in list(self.engine.rooms):
            if room in self.held or room in self._opening:
                continue
            lease = await media_lease.current(self._store(), room)
            if lease is None or lease.holder == self.holder:
                continue
            closed = await self.engine.drop_room(room, LEASE_LOST)
            logger.warning(
                "room %s: mixed by %s/%s (token %d); %d sessions here closed",
                room,
                lease.endpoint.get("node", "?"),
                lease.endpoint.get("worker", "?"),
                lease.token,
                closed,
            )

    async def _lost(self, room: str, held: _Held, lease: MediaLease) -> None:
        self.held.pop(room, None)
        self.metrics.leases_lost.inc()
        closed = await self.engine.drop_room(room, LEASE_LOST)
        logger.warning(
            "room %s: media lease %d lost to %s/%s (token %d); %d sessions closed",
            room,
            held.token,
            lease.endpoint.get("node", "?"),
            lease.endpoint.get("worker", "?"),
            lease.token,
            closed,
        )

    async def release(self, room: str) -> None:
        held = self.held.pop(room, None)
        if held is not None:
            await media_lease.give_up(self._store(), room, self.holder, held.token)
            logger.info("room %s: media lease %d given up", room, held.token)

    async def aclose(self) -> None:
        if self._task is not None:
            self._closing = True  # ends the loop even if the cancel is lost
            self._task.cancel()
            await asyncio.wait([self._task], timeout=STOP_WAIT_S)
            self._task = None
        for room in list(self.held):
            with contextlib.suppress(Exception):
                await self.release(room)


OWNERSHIP: web.AppKey[Ownership] = web.AppKey("media_ownership", Ownership)
