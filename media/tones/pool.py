"""The process pool that runs tone jobs off the event loop: one worker
process (started with `spawn`, never `fork`, so it shares no loop, lock or
socket with the server), one job at a time in arrival order, at a lower CPU
priority and under an address-space limit. A job that runs too long, or a
worker that dies (out of memory, a crash in native code), fails that job
only: the next job gets a fresh worker.

The parent never blocks: it waits on the worker's pipe and its process
sentinel with `loop.add_reader`, and delivers progress on the event loop.

Must not import aiohttp, socketio or commerce.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from kernel.errors import Invalid
from media.tones.model import ToneFailed, ToneMeta, ToneResult, Window
from media.tones.pipeline import process

logger = logging.getLogger(__name__)

OnProgress = Callable[[float], None]
JobFn = Callable[[Path, Path, Window, ToneMeta, OnProgress | None], ToneResult]
STOP_WAIT_S = 5.0


@dataclass(frozen=True)
class _Job:
    src: Path
    out_dir: Path
    window: Window
    meta: ToneMeta


def _limit_self(memory_mb: int, nice: int) -> None:
    if nice:
        os.nice(nice)
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _reason(exc: BaseException, memory_mb: int) -> str:
    if isinstance(exc, ToneFailed):
        return exc.reason
    if isinstance(exc, Invalid):
        return exc.message
    if isinstance(exc, MemoryError):
        return f"processing this sound needs more than the {memory_mb} MB allowed"
    return f"the sound could not be processed ({type(exc).__name__})"


def worker_main(conn: Connection, memory_mb: int, nice: int, job: JobFn) -> None:
    """The worker process: jobs in, progress and one answer per job out."""
    _limit_self(memory_mb, nice)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(("started", None))
        try:
            result = job(task.src, task.out_dir, task.window, task.meta, _sender(conn))
        except Exception as exc:  # every failure becomes a reason; the worker lives on
            if not isinstance(exc, ToneFailed | Invalid | MemoryError):
                logger.exception("tone job failed: %s", task.src)
            conn.send(("failed", _reason(exc, memory_mb)))
        else:
            conn.send(("done", result))


def _sender(conn: Connection) -> OnProgress:
    def send(fraction: float) -> None:
        conn.send(("progress", float(fraction)))

    return send


class _DiedIdle(Exception):
    """The worker died before it took the job: the job never ran."""


class _Worker:
    """One live worker process and the parent's end of its pipe."""

    def __init__(self, proc: BaseProcess, conn: Connection) -> None:
        self.proc, self.conn = proc, conn

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.conn.close()

    def death(self) -> str:
        code = self.proc.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            return f"the audio worker stopped unexpectedly ({name}) while processing this sound"
        return (
            f"the audio worker stopped unexpectedly (exit code {code}) while processing this sound"
        )


class TonePool:
    """Runs `process` (or `job`, for tests) in one worker process, FIFO."""

    def __init__(
        self,
        *,
        job_timeout_s: float = 120,
        memory_mb: int = 1024,
        nice: int = 10,
        job: JobFn = process,
    ) -> None:
        self.job_timeout_s = job_timeout_s
        self.memory_mb = memory_mb
        self.nice = nice
        self._job = job
        self._ctx = multiprocessing.get_context("spawn")
        self._turn = asyncio.Lock()  # FIFO: waiters are woken in arrival order
        self._worker: _Worker | None = None
        self._reaping: set[asyncio.Future[None]] = set()
        self._closed = False

    async def run(
        self,
        src: Path,
        out_dir: Path,
        window: Window,
        meta: ToneMeta,
        on_progress: OnProgress | None = None,
    ) -> ToneResult:
        """The job's result; ToneFailed(reason) when it fails, times out, or
        its worker dies."""
        async with self._turn:
            if self._closed:
                raise ToneFailed("the audio processor is shutting down")
            job = _Job(src, out_dir, window, meta)
            try:
                async with asyncio.timeout(self.job_timeout_s):
                    return await self._attempt(job, on_progress)
            except TimeoutError:
                self._discard_current()
                secs = f"{self.job_timeout_s:g} s"
                raise ToneFailed(f"processing took longer than {secs} and was stopped") from None
            except asyncio.CancelledError:
                self._discard_current()  # the job must not run on after its caller left
                raise

    async def _attempt(self, job: _Job, on_progress: OnProgress | None) -> ToneResult:
        """The job on a live worker; once more on a fresh one if the worker
        was found dead before it took the job (it died while idle)."""
        try:
            return await self._exchange(await self._live_worker(), job, on_progress)
        except _DiedIdle:
            pass
        try:
            return await self._exchange(await self._live_worker(), job, on_progress)
        except _DiedIdle as exc:
            raise ToneFailed(str(exc)) from None

    def _discard_current(self) -> None:
        if self._worker is not None:
            self._discard(self._worker)

    async def aclose(self) -> None:
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            try:
                worker.conn.send(None)
            except OSError:
                pass
            await asyncio.to_thread(worker.proc.join, STOP_WAIT_S)
            worker.kill()
            await asyncio.to_thread(worker.proc.join, STOP_WAIT_S)
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)

    async def _live_worker(self) -> _Worker:
        if self._worker is not None and self._worker.proc.is_alive():
            return self._worker
        if self._worker is not None:
            self._discard(self._worker)
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=worker_main,
            args=(child, self.memory_mb, self.nice, self._job),
            name="tone-worker",
            daemon=True,
        )
        await asyncio.to_thread(proc.start)
        child.close()
        self._worker = _Worker(proc, parent)
        logger.info("tone worker started: pid %s", proc.pid)
        return self._worker

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker and reap it in a thread (never joined on the loop)."""
        worker.kill()
        if self._worker is worker:
            self._worker = None
        reap = asyncio.get_running_loop().run_in_executor(None, worker.proc.join, STOP_WAIT_S)
        self._reaping.add(reap)
        reap.add_done_callback(self._reaping.discard)

    async def _exchange(
        self, worker: _Worker, job: _Job, on_progress: OnProgress | None
    ) -> ToneResult:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[str, object]] = loop.create_future()
        started: list[bool] = []

        def readable() -> None:
            try:
                while not answer.done() and worker.conn.poll():
                    kind, value = worker.conn.recv()
                    if kind == "started":
                        started.append(True)
                    elif kind == "progress":
                        if on_progress is not None:
                            on_progress(value)
                    else:
                        answer.set_result((kind, value))
            except (EOFError, OSError):
                died()

        def died() -> None:
            if not answer.done():
                answer.set_result(("died", None))

        def ended() -> None:
            readable()  # an answer sent just before the end still counts
            died()

        fd, sentinel = worker.conn.fileno(), worker.proc.sentinel
        loop.add_reader(fd, readable)
        loop.add_reader(sentinel, ended)
        try:
            worker.conn.send(job)
            kind, value = await answer
        finally:
            loop.remove_reader(fd)
            loop.remove_reader(sentinel)
        if kind == "done" and isinstance(value, ToneResult):
            return value
        if kind == "failed":
            raise ToneFailed(str(value))
        await asyncio.to_thread(worker.proc.join, STOP_WAIT_S)
        reason = worker.death()
        self._discard(worker)
        if not started:
            raise _DiedIdle(reason)
        logger.warning("tone worker died: %s (%s)", reason, job.src)
        raise ToneFailed(reason)
