"""Keep an embedded child service (redis-server, localstripe) running: when
it exits without being asked to, log it and start it again, waiting longer
after each quick failure (1 s, 2 s, 4 s ... 30 s; back to the start once it
has run for a minute). Must not import any domain package.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
STABLE_S = 60.0


class Supervisor:
    """`start()` after the child is up; `aclose()` before stopping it."""

    def __init__(
        self,
        name: str,
        wait_exit: Callable[[], Awaitable[int | None]],
        restart: Callable[[], Awaitable[None]],
        backoff_s: float = 1.0,
    ) -> None:
        self.name = name
        self._wait_exit = wait_exit
        self._restart = restart
        self._backoff_s = backoff_s
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self._backoff_s
        while True:
            began = loop.time()
            code = await self._wait_exit()
            if loop.time() - began > STABLE_S:
                delay = self._backoff_s
            logger.error("%s exited (code %s); restarting in %.1f s", self.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
            try:
                await self._restart()
            except Exception as exc:  # the next turn retries it, later
                logger.error("%s did not restart: %s", self.name, exc)
                continue
            self.restarts += 1
            logger.warning("%s restarted (restart %d)", self.name, self.restarts)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
