"""The one clock of the server: periodic jobs run here, each handed `now`.

Jobs must be idempotent across nodes and workers (a Lua script or a ZREM
decides who acts), or run under a lease (server/leases.py); the table of
which is which is in docs/operations.md "Workers". A failing job is logged
and runs again next time. Stopping is bounded:
a job that swallows its cancellation (some SDKs retry through it) still ends
at its next turn, and a job that hangs is abandoned after a few seconds.
A job that finds Redis unreachable reports the outage (one log line for the
whole outage, not a traceback per turn), and jobs pause until it is back.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from server.outage import STORE_DOWN, StoreOutage

logger = logging.getLogger(__name__)

Job = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
STOP_GRACE_S = 5.0


def system_clock() -> float:
    """Seconds since the epoch: the only read of the wall clock in `server/`.
    The app reads it through `app[SCHEDULER].clock()` (so tests can replace
    it); commands that run without an app (`droproom token`, `migrate`) call
    it directly."""
    return time.time()


class Scheduler:
    def __init__(self, clock: Clock = system_clock, outage: StoreOutage | None = None) -> None:
        self.clock = clock
        self.outage = outage
        self._jobs: list[tuple[float, Job]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._at_stop: list[Callable[[], Awaitable[None]]] = []

    def at_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run after the jobs stopped (a lease given up), once per stop."""
        self._at_stop.append(callback)

    def every(self, interval_s: float, job: Job) -> None:
        self._jobs.append((interval_s, job))
        if self._running:
            self._tasks.append(asyncio.create_task(self._loop(interval_s, job)))

    async def _loop(self, interval_s: float, job: Job) -> None:
        while self._running:
            if not (self.outage and self.outage.down):
                await self._run(job)
            if self._running:
                await asyncio.sleep(interval_s)

    async def _run(self, job: Job) -> None:
        name = getattr(job, "__qualname__", repr(job))
        try:
            await job(self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if self.outage is not None and isinstance(exc, STORE_DOWN):
                self.outage.report(exc, f"scheduled job {name}")
            else:
                logger.exception("scheduled job %s failed", name)

    def start(self) -> None:
        self._running = True
        self._tasks = [asyncio.create_task(self._loop(i, j)) for i, j in self._jobs]

    async def stop(self) -> None:
        self._running = False
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_S)
            for task in pending:
                logger.warning("scheduled job %s did not stop; abandoned", task.get_coro())
            for callback in self._at_stop:
                try:
                    await callback()
                except Exception as exc:  # the lease then ends by its time
                    logger.warning("%s at stop failed: %r", callback, exc)
