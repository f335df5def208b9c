"""The suite's blocked-loop guard (tests/conftest.py) sees a callback that
holds the loop, and only that one."""

import asyncio
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
