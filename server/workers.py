"""`droproom serve --workers N`: one node, N worker processes on one port.

The parent (`run_node`) starts what the workers share exactly once: the
embedded Redis (unless `REDIS_URL`), the schema migration, and the embedded
localstripe (unless Stripe keys are set), with its webhook pointed at the
node's URL. Then it starts N workers, each `python -m server.cli serve-worker`
(the same `serve` as a single process, with `REDIS_URL`, the Stripe keys and
multi-node relaying given by environment), which all bind the same host:port
with SO_REUSEPORT, so the kernel spreads the connections over them.

Why subprocesses of our own command rather than `multiprocessing`: a worker
is exactly the single-process server (same entry point, same settings read
from the environment, nothing pickled, no state inherited from the parent's
event loop), and the parent watches it like the other embedded children
(`Supervisor`: a worker that dies is started again, with backoff).

The parent prints the URL once every worker is ready. SIGTERM or SIGINT to
the parent stops the workers (each drains like a single process), then
localstripe, then Redis. A worker whose parent vanishes (SIGKILL) stops by
itself. Each process raises its open-file limit to the hard limit.

Long-polling: each worker also listens on a unix socket `<run dir>/<worker>.sock`
and prefixes the engine.io session ids it makes with its name, so a polling
request that lands on another worker is handed to the owner (`handoff`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from server import migrations, redis_client
from server.config import Settings
from server.embedded.redis_embed import EmbeddedRedis
from server.embedded.stripe_embed import EmbeddedStripe
from server.embedded.supervise import Supervisor
from server.scheduler import system_clock

logger = logging.getLogger(__name__)

READY = "droproom worker {} ready"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
WEBHOOK_PATH = "/api/v1/stripe/webhook"  # server.shop.resources.WEBHOOK_PATH
METRICS_DIR = "metrics"  # under the data dir: prometheus-client's multiprocess files


def raise_open_files() -> int:
    """The soft open-file limit up to the hard one (thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


def run_dir(data_dir: Path) -> Path:
    """Where the workers' unix sockets live (short: socket paths are ~108 bytes)."""
    path = data_dir / "run"
    if len(str(path)) < 80:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"droproom-run-{digest}"


def worker_socket(data_dir: Path, worker: str) -> Path:
    return run_dir(data_dir) / f"{worker}.sock"


def _fresh_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _child_env(base: dict[str, str]) -> dict[str, str]:
    # The child runs `-m server.cli`: make our package root importable.
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env.update(base)
    return env


class Worker:
    """One worker process, started again by its supervisor when it dies."""

    def __init__(self, name: str, settings: Settings, env: dict[str, str], demo: bool) -> None:
        self.name = name
        self._settings = settings
        self._env = env
        self._demo = demo  # only the first start seeds the demo room
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.supervisor = Supervisor(
            f"worker {name}", self._wait_exit, self._respawn, settings.restart_backoff_s
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        settings = self._settings
        args = ["--worker", self.name, "--host", settings.host, "--port", str(settings.port)]
        args += ["--data-dir", str(settings.data_dir)]
        if self._demo:
            args.append("--demo")
            if sys.stdout.isatty():
                args.append("--links-to-terminal")
            self._demo = False
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve-worker",
            *args,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C reaches the parent, which stops us in order
        )
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Any] = loop.create_future()
        self._reader = loop.create_task(self._read(self.proc, ready))
        exited: asyncio.Future[Any] = loop.create_task(self.proc.wait())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT_S):
                await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if not ready.done():
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            raise RuntimeError(f"worker {self.name} did not start (exit {self.proc.returncode})")
        logger.info("worker %s (pid %s) ready", self.name, self.proc.pid)

    async def _read(self, proc: asyncio.subprocess.Process, ready: asyncio.Future[Any]) -> None:
        """Pass the worker's output on; note its ready line."""
        assert proc.stdout is not None
        line_ready = READY.format(self.name)
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace")
            if text.strip() == line_ready:
                if not ready.done():
                    ready.set_result(None)
                continue
            sys.stdout.write(text)
            sys.stdout.flush()

    async def _wait_exit(self) -> int | None:
        proc = self.proc
        if proc is None:
            await asyncio.get_running_loop().create_future()
            return None
        code = await proc.wait()
        _mark_dead(proc.pid)
        return code

    async def _respawn(self) -> None:
        await self.start()

    async def stop(self) -> None:
        await self.supervisor.aclose()
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                logger.warning("worker %s did not stop in time; killed", self.name)
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        _mark_dead(proc.pid)
        logger.info("worker %s stopped (exit %s)", self.name, proc.returncode)


def _mark_dead(pid: int) -> None:
    """Its live gauges leave the node's sums (prometheus-client multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


async def _migrate(settings: Settings, url: str) -> None:
    client = await redis_client.open_client(url, cluster=settings.redis_cluster)
    try:
        await migrations.run(client, system_clock())
    finally:
        await client.aclose()


def worker_count(asked: int | None, settings: Settings) -> int:
    """`--workers`, else DROPROOM_WORKERS, else the machine's cores."""
    return asked or settings.workers or usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: `taskset`, a
    container's cpuset), not all the host's (`os.cpu_count()`): a worker
    per core it cannot use only queues (docs/operations.md, "Sizing")."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


async def run_node(settings: Settings, count: int, with_demo: bool) -> None:
    raise_open_files()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    metrics_dir = settings.data_dir / METRICS_DIR
    _fresh_dir(metrics_dir)
    # this process marks dead workers' files: it reads the same variable
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    _fresh_dir(run_dir(settings.data_dir))
    embedded_redis: EmbeddedRedis | None = None
    stripe: EmbeddedStripe | None = None
    workers: list[Worker] = []
    try:
        url = settings.redis_url
        if not url:
            embedded_redis = EmbeddedRedis(
                settings.data_dir, restart_backoff_s=settings.restart_backoff_s
            )
            url = await embedded_redis.start()
        await _migrate(settings, url)
        env = {
            "REDIS_URL": url,
            "DROPROOM_MULTI_NODE": "1",
            "DROPROOM_NODE": settings.node,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        if not settings.stripe_secret_key:
            stripe = EmbeddedStripe(settings.data_dir, restart_backoff_s=settings.restart_backoff_s)
            keys = await stripe.start()
            await stripe.register_webhook(settings.public_url + WEBHOOK_PATH)
            env |= {
                "STRIPE_SECRET_KEY": keys.secret_key,
                "STRIPE_PUBLISHABLE_KEY": keys.publishable_key,
                "STRIPE_WEBHOOK_SECRET": keys.webhook_secret,
                "STRIPE_API_BASE": keys.api_base,
                "STRIPE_JS_URL": keys.js_url,
            }
        for i in range(1, count + 1):
            name = f"w{i}"
            worker_env = _child_env(env | {"DROPROOM_WORKER": name})
            workers.append(Worker(name, settings, worker_env, with_demo and i == 1))
        # With --demo the first one seeds the demo room alone, then the others
        # start; else all start side by side.
        first = 1 if with_demo else 0
        for worker in workers[:first]:
            await worker.start()
        await asyncio.gather(*(w.start() for w in workers[first:]))
        for worker in workers:
            worker.supervisor.start()
        sys.stdout.write(f"droproom listening on {settings.public_url} ({count} workers)\n")
        sys.stdout.flush()
        await stop.wait()
        logger.info("shutting down %d workers", count)
    finally:
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        if stripe is not None:
            await stripe.stop()
        if embedded_redis is not None:
            await embedded_redis.stop()
