"""The one clock of the server: periodic jobs run here, each handed `now`.

Jobs must be idempotent across nodes (a Lua script or a ZREM decides who
acts). A failing job is logged and runs again next time.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

Job = Callable[[float], Awaitable[None]]


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._jobs: list[tuple[float, Job]] = []
        self._tasks: list[asyncio.Task[None]] = []

    def every(self, interval_s: float, job: Job) -> None:
        self._jobs.append((interval_s, job))
        if self._tasks:  # already started: run it too
            self._tasks.append(asyncio.create_task(self._loop(interval_s, job)))

    async def _loop(self, interval_s: float, job: Job) -> None:
        while True:
            try:
                await job(self.clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("scheduled job %s failed", getattr(job, "__qualname__", job))
            await asyncio.sleep(interval_s)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(i, j)) for i, j in self._jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
