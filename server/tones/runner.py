"""This process's tone jobs: one `TonePool` (its worker process started at
the first job, closed with the app), a task per job, the job's lease kept
alive while it runs, its progress written to the product and announced
(`product:updated`, throttled to steps of 10%), its files copied into the
store, and its end (ready, or failed with the reason) written and announced.

A job is on record in Redis (commerce.tone_jobs) from before the product
shows it as processing until it ends, so the `sweep` (a scheduler job, first
run at start-up) takes up jobs whose process died or stopped: resumed when
their source file is still under the data dir, failed with a reason when it
is not. Nothing is left `processing` for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from commerce import audio
from commerce.catalog import Catalog
from commerce.storage import FORMATS, PREVIEW_TYPE, Storage, preview_key, tone_key
from commerce.tone_jobs import ToneJob, ToneJobs
from kernel.errors import DomainError, NotFound
from media.tones import ToneFailed, ToneFile, ToneMeta, TonePool, ToneResult, Window
from server.appkeys import EMITTER, REDIS, SCHEDULER, SETTINGS, STORAGE

logger = logging.getLogger(__name__)

PROGRESS_STEP = 0.1  # progress is written and announced in steps of 10%
STORE_ATTEMPTS = 4  # copying into the store is retried (S3 may blink)
STORE_BACKOFF_S = 0.5
STRAY_AFTER_S = 3600.0  # an upload whose request died leaves its file; gone after this
LOST_SOURCE = "the server restarted and the uploaded sound was not found; please upload it again"
INTERNAL = "the sound could not be processed (an internal error); please try again"


class ToneRunner:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        settings = app[SETTINGS]
        self.catalog = Catalog(app[REDIS])
        self.jobs = ToneJobs(app[REDIS])
        self.owner = "proc_" + secrets.token_hex(8)
        self.lease_s = settings.tone_lease_s
        self.sources = settings.data_dir / "tones" / "sources"
        self.work = settings.data_dir / "tones" / "work"
        self._pool: TonePool | None = None
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, ToneJob] = {}  # job id -> job, as long as its task
        self._strays_checked = float("-inf")

    def clock(self) -> float:
        return self.app[SCHEDULER].clock()

    def pool(self) -> TonePool:
        if self._pool is None:
            settings = self.app[SETTINGS]
            self._pool = TonePool(
                job_timeout_s=settings.tone_job_timeout_s,
                memory_mb=settings.tone_memory_mb,
                nice=settings.tone_nice,
            )
        return self._pool

    def source_path(self, job_id: str) -> Path:
        self.sources.mkdir(parents=True, exist_ok=True)
        return self.sources / f"{job_id}.source"

    # --- starting ---------------------------------------------------------
    async def begin(self, job: ToneJob) -> dict[str, Any]:
        """The job on record, the product processing, the work under way."""
        await self.jobs.add(job, self.owner, job.created_at + self.lease_s)
        try:
            await self.catalog.change_audio(
                job.product_id, "start", job.job_id, repr(job.created_at)
            )
        except DomainError:
            await self._forget(job)  # the product went meanwhile
            raise
        await self._supersede(job)
        self._submit(job)
        logger.info("product %s: tone job %s queued", job.product_id, job.job_id)
        return await self.announce(job.product_id)

    def _submit(self, job: ToneJob) -> None:
        task = asyncio.create_task(self._run(job), name=f"tone-job:{job.job_id}")
        self.tasks[job.job_id], self._running[job.job_id] = task, job
        task.add_done_callback(lambda _: self._ended(job.job_id))

    def _ended(self, job_id: str) -> None:
        self.tasks.pop(job_id, None)
        self._running.pop(job_id, None)

    async def _supersede(self, newer: ToneJob) -> None:
        """An older upload of the same product still queued or running here
        is dropped: its result would be ignored anyway."""
        for job_id, job in list(self._running.items()):
            task = self.tasks.get(job_id)
            if job.product_id != newer.product_id or job_id == newer.job_id or task is None:
                continue
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self._forget(job)
            logger.info("product %s: tone job %s superseded", job.product_id, job_id)

    async def announce(self, product_id: str) -> dict[str, Any]:
        """`product:updated` to every room showing the product; the product
        as the wire shows it."""
        product, inv = await self.catalog.get(product_id)
        wire = product.as_dict(inv.left if inv else None)
        rooms = await self.catalog.rooms_showing(product_id)
        await self.app[EMITTER].emit(audio.product_updated(wire, rooms))
        return wire

    # --- running ----------------------------------------------------------
    async def _run(self, job: ToneJob) -> None:
        progress = _Progress(self, job)
        out_dir = self.work / job.job_id
        try:
            result = await self.pool().run(
                Path(job.source),
                out_dir,
                Window(job.start_s, job.length_s),
                await self._meta(job),
                progress.report,
            )
            await progress.drain()
            await self._finish(job, result)
        except asyncio.CancelledError:
            progress.cancel()
            raise  # shutting down: the lease is let go in aclose, the source kept
        except ToneFailed as exc:
            await progress.drain()
            await self._fail(job, exc.reason)
        except Exception:
            logger.exception("product %s: tone job %s broke", job.product_id, job.job_id)
            await self._fail(job, INTERNAL)
        finally:
            await asyncio.to_thread(shutil.rmtree, out_dir, True)

    async def _meta(self, job: ToneJob) -> ToneMeta:
        product = await self.catalog.product(job.product_id)
        title = product.title if product is not None else job.product_id
        # issue 11 gives products an owner; until then the shop is the creator
        return ToneMeta(title=title, creator="droproom", tags=job.tags)

    async def _finish(self, job: ToneJob, result: ToneResult) -> None:
        if not await self._is_current(job):
            logger.info("product %s: tone job %s superseded", job.product_id, job.job_id)
            await self._forget(job)
            return
        try:
            await self._store(result)
        except (DomainError, OSError) as exc:
            logger.warning("product %s: storing tone job %s failed: %s", job.product_id, job, exc)
            await self._fail(job, "the files could not be stored; please upload the sound again")
            return
        ready = ready_record(job, result)
        await self.catalog.change_audio(
            job.product_id, "ready", job.job_id, audio.encode_ready(ready)
        )
        logger.info("product %s: tone job %s ready", job.product_id, job.job_id)
        await self._forget(job)
        await self._announce_quietly(job.product_id)

    async def _store(self, result: ToneResult) -> None:
        storage: Storage = self.app[STORAGE]
        files = [(f, tone_key(f.sha256, f.format), FORMATS[f.format][1]) for f in result.variants]
        files.append(
            (result.bundle, tone_key(result.bundle.sha256, "bundle"), FORMATS["bundle"][1])
        )
        files.append((result.preview, preview_key(result.preview.sha256), PREVIEW_TYPE))
        for file, key, content_type in files:
            await _put(storage, file, key, content_type)

    async def _fail(self, job: ToneJob, reason: str) -> None:
        with contextlib.suppress(NotFound):
            await self.catalog.change_audio(job.product_id, "failed", job.job_id, reason)
        logger.info("product %s: tone job %s failed: %s", job.product_id, job.job_id, reason)
        await self._forget(job)
        await self._announce_quietly(job.product_id)

    async def _is_current(self, job: ToneJob) -> bool:
        product = await self.catalog.product(job.product_id)
        upload = (product.audio or {}).get("upload") if product is not None else None
        return bool(upload and upload["job_id"] == job.job_id and upload["state"] == "processing")

    async def _forget(self, job: ToneJob) -> None:
        """The job ends: its record and its source go."""
        await self.jobs.done(job.job_id)
        await asyncio.to_thread(Path(job.source).unlink, True)

    async def _announce_quietly(self, product_id: str) -> None:
        with contextlib.suppress(NotFound):  # the product was removed meanwhile
            await self.announce(product_id)

    # --- leases and restarts ----------------------------------------------
    async def sweep(self, now: float) -> None:
        """Renew the leases of the jobs running here; take up jobs whose
        process let go of them or died."""
        until = now + self.lease_s
        for job_id in list(self.tasks):
            if not await self.jobs.renew(job_id, self.owner, until, now):
                logger.warning("tone job %s: lease lost", job_id)
        for job in await self.jobs.claim_expired(self.owner, now, until):
            await self._take_up(job)
        if now - self._strays_checked >= STRAY_AFTER_S:
            self._strays_checked = now
            await self.remove_strays(now)

    async def remove_strays(self, now: float) -> None:
        """Source files no job holds (a process killed while receiving one),
        once they are older than any upload could take."""
        held = {Path(job.source).name for job in await self.jobs.pending()}

        def remove() -> int:
            removed = 0
            for path in self.sources.glob("*.source") if self.sources.is_dir() else []:
                try:
                    stray = path.name not in held and now - path.stat().st_mtime > STRAY_AFTER_S
                except FileNotFoundError:
                    continue  # another sweep (the scheduled one, another process) took it
                if stray:
                    path.unlink(missing_ok=True)
                    removed += 1
            return removed

        if removed := await asyncio.to_thread(remove):
            logger.info("removed %d stray tone sources", removed)

    async def _take_up(self, job: ToneJob) -> None:
        if not await self._is_current(job):
            await self._forget(job)  # ended or superseded: nothing to do
        elif not await asyncio.to_thread(Path(job.source).is_file):
            await self._fail(job, LOST_SOURCE)
        else:
            logger.info("product %s: tone job %s resumed", job.product_id, job.job_id)
            self._submit(job)

    async def aclose(self) -> None:
        """Stop: the jobs under way are let go (the next start resumes them)."""
        running = dict(self.tasks)
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)
        now = self.clock()
        for job_id in running:
            with contextlib.suppress(Exception):
                await self.jobs.release(job_id, self.owner, now)
        if self._pool is not None:
            await self._pool.aclose()


class _Progress:
    """A job's progress as the pool reports it (on the loop), written and
    announced in steps of PROGRESS_STEP, one write at a time."""

    def __init__(self, runner: ToneRunner, job: ToneJob) -> None:
        self.runner, self.job = runner, job
        self.sent = 0.0
        self.wanted = 0.0
        self._task: asyncio.Task[None] | None = None

    def report(self, fraction: float) -> None:
        step = round(int(min(max(fraction, 0.0), 0.99) / PROGRESS_STEP) * PROGRESS_STEP, 2)
        if step <= self.wanted:
            return
        self.wanted = step
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())

    async def _write(self) -> None:
        while self.sent < self.wanted:
            value, job = self.wanted, self.job
            try:
                changed = await self.runner.catalog.change_audio(
                    job.product_id, "progress", job.job_id, repr(value)
                )
                if changed:
                    await self.runner.announce(job.product_id)
            except Exception:
                logger.exception("tone job %s: progress not written", job.job_id)
            self.sent = value

    async def drain(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def _put(storage: Storage, file: ToneFile, key: str, content_type: str) -> None:
    for attempt in range(STORE_ATTEMPTS):
        try:
            await storage.put_file(file.path, key, content_type)
            return
        except (DomainError, OSError):
            if attempt == STORE_ATTEMPTS - 1:
                raise
            await asyncio.sleep(STORE_BACKOFF_S * 2**attempt)


def ready_record(job: ToneJob, result: ToneResult) -> dict[str, Any]:
    preview = result.preview
    return audio.ready_audio(
        duration_s=result.duration_s,
        loudness_lufs=result.loudness_lufs,
        true_peak_dbtp=result.true_peak_dbtp,
        preview={
            "sha256": preview.sha256,
            "bytes": preview.bytes,
            "duration_s": preview.duration_s,
        },
        variants=[f.wire() for f in result.variants],
        bundle={"bytes": result.bundle.bytes, "sha256": result.bundle.sha256},
        window={"start_s": job.start_s, "length_s": result.duration_s},
        tags=job.tags,
    )
