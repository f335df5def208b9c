"""The data's schema version in Redis and the runner of migration steps.

`{droproom}:schema` holds the version of the key layout the data is in. A
step is `async (redis, now) -> count` (the count says how much it moved, for
the log); steps run in order, each at most once: the version is raised after
each step, so a run that dies part-way resumes at the step it was in (each
step is itself safe to repeat). One process migrates at a time (a lock with
a token and a time limit); the others wait for it. Must not import any
framework or domain package.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

SCHEMA_KEY = "{droproom}:schema"  # STRING the version of the data's key layout
LOCK_KEY = "{droproom}:schema:lock"  # STRING the migrating process's token (TTL)
LOCK_TTL_S = 300
WAIT_STEP_S = 0.1

StepFn = Callable[[Any, float], Awaitable[int]]

# KEYS: lock   ARGV: token  (delete the lock only if it is still ours)
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Step:
    version: int  # the schema version the data is in once this step ran
    name: str
    run: StepFn


@dataclass(frozen=True, slots=True)
class Applied:
    step: Step
    count: int


def latest(steps: Sequence[Step]) -> int:
    return steps[-1].version if steps else 0


def check_order(steps: Sequence[Step]) -> None:
    versions = [s.version for s in steps]
    if versions != sorted(set(versions)) or (versions and versions[0] < 1):
        raise ValueError(f"migration steps must have rising versions from 1: {versions}")


async def version(redis: Any) -> int:
    raw = await redis.get(SCHEMA_KEY)
    return int(raw) if raw is not None else 0


async def migrate(redis: Any, steps: Sequence[Step], now: float) -> list[Applied]:
    """Bring the data to the latest version; what ran (nothing if current)."""
    check_order(steps)
    if await version(redis) >= latest(steps):
        return []
    token = secrets.token_hex(8)
    while not await redis.set(LOCK_KEY, token, nx=True, ex=LOCK_TTL_S):
        if await version(redis) >= latest(steps):
            return []  # another process did it
        await asyncio.sleep(WAIT_STEP_S)
    try:
        return await _run(redis, steps, now)
    finally:
        await redis.eval(_UNLOCK, 1, LOCK_KEY, token)


async def _run(redis: Any, steps: Sequence[Step], now: float) -> list[Applied]:
    applied = []
    for step in steps:
        if step.version <= await version(redis):
            continue
        count = await step.run(redis, now)
        await redis.set(SCHEMA_KEY, step.version)
        logger.info("schema %d: %s (%d changed)", step.version, step.name, count)
        applied.append(Applied(step, count))
    return applied
