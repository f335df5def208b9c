"""The suite's blocked-loop guard (tests/conftest.py) sees a callback that
holds the loop, and only that one."""

import asyncio
import os
import subprocess
import time

import pytest

from tests.conftest import _SlowCallbacks


@pytest.mark.allow_blocking
async def test_the_guard_names_a_callback_that_holds_the_loop() -> None:
    watcher = _SlowCallbacks(0.05)
    with watcher.watching():
        await asyncio.sleep(0.01)  # quick callbacks pass
        assert watcher.seen == []
        asyncio.get_running_loop().call_soon(time.sleep, 0.1)
        await asyncio.sleep(0.2)
    assert len(watcher.seen) == 1 and "sleep" in watcher.seen[0]
    # outside `watching`, nothing is timed any more
    asyncio.get_running_loop().call_soon(time.sleep, 0.1)
    await asyncio.sleep(0.2)
    assert len(watcher.seen) == 1


@pytest.mark.allow_blocking
async def test_time_in_the_garbage_collector_is_not_the_callbacks() -> None:
    watcher = _SlowCallbacks(0.05)

    def collect_slowly() -> None:
        # a collection that takes 0.1 s, as a full one late in a long run may
        watcher._on_gc("start", {})
        time.sleep(0.1)
        watcher._on_gc("stop", {})

    with watcher.watching():
        asyncio.get_running_loop().call_soon(collect_slowly)
        await asyncio.sleep(0.2)
    assert watcher.seen == []


@pytest.mark.allow_blocking
async def test_the_guard_says_where_the_loop_was_held_and_counts_computing() -> None:
    watcher = _SlowCallbacks(0.1)

    def hold_the_loop() -> None:
        ends = time.thread_time() + 0.3
        while time.thread_time() < ends:  # computing, not sleeping
            pass

    with watcher.watching():
        asyncio.get_running_loop().call_soon(hold_the_loop)
        await asyncio.sleep(0.4)
    [line] = watcher.seen
    assert "the loop was at" in line and "hold_the_loop" in line, line


@pytest.mark.allow_blocking
async def test_a_stretch_the_machine_did_not_run_the_process_is_not_the_callbacks() -> None:
    """SIGSTOP from another process, as an overloaded machine would, while a
    callback runs: its wall time grows by the stop, its work does not."""
    watcher = _SlowCallbacks(0.3)
    # a plain Popen: the callback below polls it without awaiting
    stopper = subprocess.Popen(  # noqa: ASYNC220
        ["sh", "-c", f"sleep 0.1; kill -STOP {os.getpid()}; sleep 0.8; kill -CONT {os.getpid()}"]
    )
    took = 0.0

    def short_work_across_a_stop() -> None:
        nonlocal took
        started = time.perf_counter()
        while stopper.poll() is None:  # about 0.1 s of work, then stopped
            time.sleep(0.001)
        took = time.perf_counter() - started

    try:
        with watcher.watching():
            asyncio.get_running_loop().call_soon(short_work_across_a_stop)
            await asyncio.sleep(0.05)
    finally:
        stopper.wait(5)
    assert took > 0.8  # the stop really was inside the callback
    assert watcher.seen == []
    # the same wall time spent sleeping on the loop is still caught
    with watcher.watching():
        asyncio.get_running_loop().call_soon(time.sleep, 0.5)
        await asyncio.sleep(0.05)
    assert len(watcher.seen) == 1
