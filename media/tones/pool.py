"""The process pool that runs tone jobs off the event loop: one worker
process (started with `spawn`, never `fork`, so it shares no loop, lock or
socket with the server), one job at a time in arrival order, at a lower CPU
priority and under an address-space limit. A job that runs too long, or a
worker that dies (out of memory, a crash in native code), fails that job
only: the next job gets a fresh worker.

The parent never blocks: it waits on the worker's pipe and its process
sentinel with `loop.add_reader`, joins processes in threads, and delivers
progress on the event loop. Messages from the worker: `("ready", pid)`
once, then per job `("started", None)`, `("progress", fraction)`... and
one `("done", ToneResult)` or `("failed", reason)`.

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
from media.tones.pipeline import memory_reason, process

logger = logging.getLogger(__name__)

OnProgress = Callable[[float], None]
JobFn = Callable[[Path, Path, Window, ToneMeta, OnProgress | None], ToneResult]
START_TIMEOUT_S = 60.0  # a worker imports numpy and av before it is ready
STOP_WAIT_S = 5.0
SHUT_DOWN = "the audio processor shut down before this sound was processed; upload it again"


@dataclass(frozen=True)
class _Job:
    src: Path
    out_dir: Path
    window: Window
    meta: ToneMeta


# The worker process


def worker_main(conn: Connection, memory_mb: int, nice: int, job: JobFn) -> None:
    """The worker: limits itself, says it is ready, then runs jobs until told
    to stop (None) or its pipe closes."""
    _limit_self(memory_mb, nice)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(("started", None))
        conn.send(_answer(job, task, conn))


def _limit_self(memory_mb: int, nice: int) -> None:
    if nice:
        os.nice(nice)
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _answer(job: JobFn, task: _Job, conn: Connection) -> tuple[str, object]:
    def progress(fraction: float) -> None:
        conn.send(("progress", float(fraction)))

    try:
        return ("done", job(task.src, task.out_dir, task.window, task.meta, progress))
    except Exception as exc:  # every failure becomes a reason; the worker lives on
        if not isinstance(exc, ToneFailed | Invalid | MemoryError):
            logger.exception("tone job failed: %s", task.src)
        return ("failed", _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ToneFailed):
        return exc.reason
    if isinstance(exc, Invalid):
        return exc.message
    if isinstance(exc, MemoryError):
        return memory_reason()
    return f"the sound could not be processed ({type(exc).__name__})"


# The parent's side


class _Died(Exception):
    """The worker process ended while the parent waited on it."""


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, proc: BaseProcess, conn: Connection) -> None:
        self.proc, self.conn = proc, conn

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.conn.close()

    def death(self) -> str:
        code = self.proc.exitcode
        how = f"exit code {code}"
        if code is not None and code < 0:
            how = signal.Signals(-code).name
        return f"the audio worker stopped unexpectedly ({how}) while processing this sound"

    async def receive(self, on_progress: OnProgress | None = None) -> tuple[str, object]:
        """The next message that is not progress (progress goes to
        `on_progress`, on the loop); _Died if the process ends first."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[str, object]] = loop.create_future()

        def readable() -> None:
            try:
                while not answer.done() and self.conn.poll():
                    kind, value = self.conn.recv()
                    if kind != "progress":
                        answer.set_result((kind, value))
                    elif on_progress is not None:
                        _report(on_progress, value)
            except (EOFError, OSError) as exc:
                if not answer.done():
                    answer.set_exception(_Died(str(exc)))

        def ended() -> None:
            readable()  # a message sent just before the end still counts
            if not answer.done():
                answer.set_exception(_Died("ended"))

        fd, sentinel = self.conn.fileno(), self.proc.sentinel
        loop.add_reader(fd, readable)
        loop.add_reader(sentinel, ended)
        try:
            return await answer
        finally:
            loop.remove_reader(fd)
            loop.remove_reader(sentinel)


def _report(on_progress: OnProgress, fraction: object) -> None:
    """A caller's progress handler that raises must not stall the job."""
    try:
        on_progress(float(fraction))  # type: ignore[arg-type]
    except Exception:
        logger.exception("tone progress handler failed")


class TonePool:
    """Runs `process` (or `job`: tests pass one that misbehaves) in one
    worker process, one job at a time, first come first served."""

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

    @property
    def worker_pid(self) -> int | None:
        """The live worker's process id (None before the first job)."""
        return self._worker.proc.pid if self._worker is not None else None

    async def run(
        self,
        src: Path,
        out_dir: Path,
        window: Window,
        meta: ToneMeta,
        on_progress: OnProgress | None = None,
    ) -> ToneResult:
        """The job's result; ToneFailed(reason) when it fails, runs over its
        time, or its worker dies. Cancelling the call stops the job."""
        async with self._turn:
            if self._closed:
                raise ToneFailed(SHUT_DOWN)
            job = _Job(src, out_dir, window, meta)
            try:
                return await self._run(job, on_progress)
            except asyncio.CancelledError:
                self._discard_current()  # the job must not run on after its caller left
                raise

    async def aclose(self) -> None:
        """Stop the worker and reap it. A job still running fails at once, and
        so do the jobs queued behind it."""
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            if self._turn.locked():
                worker.proc.kill()  # busy: it would not read the stop
            else:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            await asyncio.to_thread(worker.proc.join, STOP_WAIT_S)
            worker.kill()
            await asyncio.to_thread(worker.proc.join, STOP_WAIT_S)
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)

    async def _run(self, job: _Job, on_progress: OnProgress | None) -> ToneResult:
        """The job on a live worker; once more on a fresh one if the worker
        died before it took the job (it died while idle: the job never ran)."""
        for _ in range(2):
            worker = await self._live_worker()
            try:
                worker.conn.send(job)
                kind, _ = await worker.receive()
            except (_Died, OSError):
                await self._buried(worker)
                continue
            if kind == "started":
                return await self._finish(worker, job, on_progress)
        raise ToneFailed("the audio worker could not take the job")

    async def _finish(
        self, worker: _Worker, job: _Job, on_progress: OnProgress | None
    ) -> ToneResult:
        try:
            async with asyncio.timeout(self.job_timeout_s):
                kind, value = await worker.receive(on_progress)
        except TimeoutError:
            self._discard(worker)
            secs = f"{self.job_timeout_s:g} s"
            raise ToneFailed(f"processing took longer than {secs} and was stopped") from None
        except _Died:
            reason = await self._buried(worker)
            if self._closed:
                raise ToneFailed(SHUT_DOWN) from None
            logger.warning("tone worker died: %s (%s)", reason, job.src)
            raise ToneFailed(reason) from None
        if kind == "done" and isinstance(value, ToneResult):
            return value
        raise ToneFailed(str(value))

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
        worker = _Worker(proc, parent)
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                await worker.receive()  # ("ready", pid)
        except (TimeoutError, _Died):
            self._discard(worker)
            raise ToneFailed("the audio worker could not start") from None
        self._worker = worker
        logger.info("tone worker started: pid %s", proc.pid)
        return worker

    async def _buried(self, worker: _Worker) -> str:
        """Why a dead worker died, once its process is reaped."""
        await asyncio.to_thread(worker.proc.join, STOP_WAIT_S)
        self._discard(worker)
        return worker.death()

    def _discard_current(self) -> None:
        if self._worker is not None:
            self._discard(self._worker)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker and reap it in a thread (never joined on the loop)."""
        worker.kill()
        if self._worker is worker:
            self._worker = None
        reap = asyncio.get_running_loop().run_in_executor(None, worker.proc.join, STOP_WAIT_S)
        self._reaping.add(reap)
        reap.add_done_callback(self._reaping.discard)
