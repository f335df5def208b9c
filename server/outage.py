"""Whether the store (Redis) answers, as requests and jobs see it.

A request or job that finds Redis unreachable reports it here instead of
logging a traceback: the first report of an outage logs one line and starts
a probe that pings Redis until it answers, then logs one line again. Jobs
pause while the store is down. Must not import any domain package.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# What "the store is unreachable" looks like (a refused or lost connection,
# no connection free in the pool, a command timing out).
STORE_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
PROBE_S = 0.5
PING_TIMEOUT_S = 2.0


class StoreOutage:
    def __init__(self, ping: Callable[[], Awaitable[Any]], probe_s: float = PROBE_S) -> None:
        self._ping = ping
        self._probe_s = probe_s
        self._since: float | None = None
        self._probe: asyncio.Task[None] | None = None
        self.outages = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def report(self, exc: BaseException, where: str) -> None:
        """Called by whoever found Redis unreachable; logs only the first time."""
        if self._since is not None:
            return
        self._since = time.monotonic()
        self.outages += 1
        logger.error(
            "redis unreachable (%s: %r); answering 503 and pausing jobs until it is back",
            where,
            exc,
        )
        self._probe = asyncio.get_running_loop().create_task(self._wait_back())

    async def _answers(self) -> bool:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await self._ping()
        except (OSError, TimeoutError):
            return False
        except STORE_DOWN:
            return False
        return True

    async def _wait_back(self) -> None:
        while not await self._answers():
            await asyncio.sleep(self._probe_s)
        since, self._since = self._since, None
        logger.warning("redis is back after %.1f s", time.monotonic() - (since or 0.0))

    async def aclose(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
