"""Tone uploads being processed, kept in Redis so that a restart never
leaves a product `processing` for ever.

A job is written (with the source file already in place under the data
dir) before the product shows the upload as processing; the process that
runs it holds a lease and renews it while the job runs. A job whose lease
ended (its process was killed, or stopped and let go of it) is claimed again
by the next process that looks (`claim_expired`, a scheduler job): it
resumes it when the source is still there and fails it with a reason
otherwise. The keys are in commerce/keys.py (`{shop}:tones:*`), every change
is commerce/lua/tone_job.lua. Must not import aiohttp, socketio, av or
`media/`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from kernel.lua import Scripts

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToneJob:
    """One upload to process: the source file and what to keep of it."""

    job_id: str
    product_id: str
    source: str  # a path under the data dir, removed when the job ends
    start_s: float
    length_s: float
    tags: tuple[str, ...]
    created_at: float

    def record(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_record(cls, raw: bytes | str) -> ToneJob:
        d = json.loads(raw)
        d["tags"] = tuple(d.get("tags") or ())
        return cls(**d)


class ToneJobs:
    """The job records and their leases."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._scripts = Scripts(redis)

    async def _run(
        self, op: str, job_id: str, owner: str, until: float, now: float, rec: str
    ) -> Any:
        script_keys = [keys.TONE_JOBS, keys.TONE_LEASES, keys.TONE_OWNERS]
        args = [op, job_id, owner, repr(until), repr(now), rec]
        return await self._scripts.run("commerce/tone_job", script_keys, args)

    async def add(self, job: ToneJob, owner: str, lease_until: float) -> None:
        await self._run("add", job.job_id, owner, lease_until, job.created_at, job.record())

    async def renew(self, job_id: str, owner: str, lease_until: float, now: float) -> bool:
        return bool(await self._run("renew", job_id, owner, lease_until, now, ""))

    async def release(self, job_id: str, owner: str, now: float) -> bool:
        return bool(await self._run("release", job_id, owner, 0.0, now, ""))

    async def done(self, job_id: str) -> None:
        await self._run("done", job_id, "", 0.0, 0.0, "")

    async def claim_expired(self, owner: str, now: float, lease_until: float) -> list[ToneJob]:
        """The jobs whose lease ended, now leased to `owner` (oldest first)."""
        due = await self._redis.zrangebyscore(keys.TONE_LEASES, "-inf", repr(now))
        claimed = []
        for raw_id in due:
            record = await self._run("claim", raw_id.decode(), owner, lease_until, now, "")
            if record:
                claimed.append(ToneJob.from_record(record))
        return sorted(claimed, key=lambda j: j.created_at)

    async def pending(self) -> list[ToneJob]:
        """Every job on record (tests and operators)."""
        raw = await self._redis.hvals(keys.TONE_JOBS)
        return [ToneJob.from_record(r) for r in raw]
