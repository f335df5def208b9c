"""The supervisor of the embedded services: a child that keeps dying is
restarted, each time after a longer wait, and one that stays up is left be."""

import asyncio
import itertools
import logging
import sys

import pytest

from server.embedded.supervise import Supervisor


async def test_a_child_that_keeps_dying_is_restarted_with_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    started: list[float] = []
    child: list[asyncio.subprocess.Process] = []

    async def spawn() -> None:
        started.append(loop.time())
        child.append(await asyncio.create_subprocess_exec(sys.executable, "-c", "exit(3)"))

    async def wait_exit() -> int | None:
        return await child[-1].wait()

    await spawn()
    supervisor = Supervisor("flaky", wait_exit, spawn, backoff_s=0.05)
    caplog.set_level(logging.WARNING, "server.embedded.supervise")
    supervisor.start()
    async with asyncio.timeout(30):
        while supervisor.restarts < 4:
            await asyncio.sleep(0.01)
    await supervisor.aclose()
    waits = [b - a for a, b in itertools.pairwise(started)]
    assert [w >= 0.05 * 2**i for i, w in enumerate(waits[:4])] == [True] * 4
    assert caplog.text.count("flaky exited (code 3)") >= 4
    assert "flaky restarted (restart 4)" in caplog.text


async def test_closing_the_supervisor_does_not_restart_anything() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(60)")
    restarted: list[bool] = []

    async def restart() -> None:
        restarted.append(True)

    supervisor = Supervisor("steady", proc.wait, restart, backoff_s=0.01)
    supervisor.start()
    await asyncio.sleep(0.1)
    await supervisor.aclose()
    proc.kill()
    await proc.wait()
    await asyncio.sleep(0.1)
    assert restarted == []
