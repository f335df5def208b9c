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
