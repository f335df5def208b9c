"""Scheduled jobs that must run in one process at a time, whatever the
number of workers and nodes: each turn first holds a Redis lease (the
`rooms/lease` script: taken when free, renewed when ours, with a token per
process). A holder that dies stops renewing, so another process takes the
job over after the lease's time; one that stops cleanly gives it up at once.
"""

import secrets

from aiohttp import web

from kernel.lua import Scripts
from server.appkeys import REDIS, SCHEDULER
from server.scheduler import Job

MIN_TTL_S = 10.0


def lease_key(name: str) -> str:
    return "{jobs}:lease:" + name


def leased(app: web.Application, name: str, interval_s: float, job: Job) -> Job:
    """`job`, run only while this process holds the lease `name`."""
    token = secrets.token_hex(8)
    ttl_ms = int(max(3 * interval_s, MIN_TTL_S) * 1000)
    held = False

    async def hold(ms: int) -> bool:
        return bool(await Scripts(app[REDIS]).run("rooms/lease", [lease_key(name)], [token, ms]))

    async def turn(now: float) -> None:
        nonlocal held
        held = await hold(ttl_ms)
        if held:
            await job(now)

    async def give_up() -> None:
        if held:  # ours: it ends now (a renewal of one millisecond)
            await hold(1)

    turn.__qualname__ = f"leased {name}"
    app[SCHEDULER].at_stop(give_up)
    return turn
