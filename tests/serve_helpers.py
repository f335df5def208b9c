"""`droproom serve` as a child process of a test: a node of one or more
workers on a free port with its own data dir, its output collected, stopped
by its pid at the end (SIGTERM, then SIGKILL after a minute)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from server.workers import worker_socket
from tests.harness import ADMIN_KEY, SECRET, free_port


@dataclass
class Served:
    proc: asyncio.subprocess.Process
    url: str
    data: Path
    lines: list[str]
    reader: asyncio.Task[None]

    def log(self) -> str:
        return "\n".join(self.lines)

    def worker_pid(self, worker: str) -> int:
        """The pid of the newest process of that worker (restarts included)."""
        found = re.findall(rf"worker {worker} \(pid (\d+)\) ready", self.log())
        return int(found[-1])

    def socket(self, worker: str) -> Path:
        return worker_socket(self.data, worker)


S = TypeVar("S", bound=Served)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any droproom, Redis or metrics
    setting of its own, with the test secret and admin key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env |= {"DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN_KEY}
    return env | extra


@contextlib.asynccontextmanager
async def serving(
    data: Path,
    *args: str,
    workers: int = 1,
    env: dict[str, str] | None = None,
    kind: type[S],
    preexec_fn: Callable[[], None] | None = None,
) -> AsyncIterator[S]:
    """`serve --workers N` until the block ends; `args` go to `serve`."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "server.cli", "serve", "--workers", str(workers), "--port", str(port)),
        *("--data-dir", str(data), *args),
        env=clean_env() if env is None else env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=preexec_fn,
    )
    lines: list[str] = []
    listening = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode(errors="replace").rstrip())
            if b"listening on" in line:
                listening.set()

    reader = asyncio.create_task(read())
    served = kind(proc, f"http://127.0.0.1:{port}", data, lines, reader)
    try:
        async with asyncio.timeout(90):
            await listening.wait()
        yield served
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await reader
