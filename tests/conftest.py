"""Fixtures: a real redis-server for the session, a real server per test, and
a guard that fails any test whose code blocks the event loop."""

import asyncio
import collections
import contextlib
import gc
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from server.config import Settings
from tests.harness import (
    CLUSTER_ENV,
    Client,
    Harness,
    RedisServer,
    connect,
    start_server,
    stop_server,
)
from tests.harness import test_settings as make_settings
from tests.redis_cluster import RedisClusterNodes

BLOCKING_THRESHOLD_S = float(os.environ.get("DROPROOM_TEST_BLOCKING_S", "1.0"))


class _NeverRetrievedInOneLine(logging.Filter):
    """asyncio reports a future whose exception nobody read (aiortc's peers
    leave a few at close) from `Future.__del__`, i.e. from inside a garbage
    collection. Formatting its traceback there runs `ast.parse` (Python
    3.11's traceback carets), and when the collection interrupted pytest's
    own AST work the interpreter raises "SystemError: AST constructor
    recursion depth mismatch" and the run ends in error. The report keeps
    its message and the exception's repr, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "never retrieved" in str(record.msg):
            record.msg = f"{record.getMessage()}: {record.exc_info[1]!r}"
            record.args = None
            record.exc_info = None
        return True


logging.getLogger("asyncio").addFilter(_NeverRetrievedInOneLine())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--redis-cluster",
        action="store_true",
        help="give tests a real 3-node Redis Cluster on loopback instead of one redis-server",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--redis-cluster"):
        os.environ[CLUSTER_ENV] = "1"  # test_settings turns DROPROOM_REDIS_CLUSTER on


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    nodes = RedisClusterNodes(tmp_path_factory.mktemp("cluster"))
    yield nodes
    nodes.stop()


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    """An empty Redis: one redis-server, or with --redis-cluster a 3-node cluster."""
    if request.config.getoption("--redis-cluster"):
        nodes: RedisClusterNodes = request.getfixturevalue("redis_cluster")
        nodes.flushall()
        return nodes.url
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client().flushall()
    return server.url


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(tmp_path / "data", redis_url)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Harness]:
    harness = await start_server(settings)
    yield harness
    await stop_server(harness)


@pytest.fixture
async def sio_client(server: Harness) -> AsyncIterator[Callable[[str], Awaitable[Client]]]:
    opened: list[Client] = []

    async def factory(token: str) -> Client:
        client = await connect(server.url, token)
        opened.append(client)
        return client

    yield factory
    for client in opened:
        await client.close()


class _Freezes:
    """One thread that wakes every `TICK_S` and notes when it woke late while
    the process as a whole got almost no CPU: the machine had not scheduled
    the process (a shared CI machine, Chromium decoding audio on the same two
    cores). A callback's wall time inside such a stretch is not its code's.

    What it tells apart, and how:
    - the loop's thread in `time.sleep` or blocking I/O releases the GIL, so
      the ticker wakes on time: the whole wait is the callback's;
    - the loop's thread computing in Python or in C uses CPU (the guard also
      compares the thread's own CPU time);
    - another thread holding the GIL computes: the process's CPU time grows
      with the gap, so the gap is not a freeze.

    While a callback has run past half the threshold it also samples the
    loop thread's stack once, so a failure says where the loop was held."""

    TICK_S = 0.01
    LATE_S = 0.05

    def __init__(self) -> None:
        self.spans: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=4096
        )  # (start, end, frozen seconds) of each late wake-up
        self.last_wake = time.perf_counter()
        self.running: tuple[float, int] | None = None  # the timed callback's start, thread
        self.sample_after_s = 0.5
        self.stacks: dict[float, str] = {}
        thread = threading.Thread(target=self._tick, name="blocking-guard", daemon=True)
        thread.start()

    def _tick(self) -> None:
        while True:
            woke_cpu = time.process_time()
            time.sleep(self.TICK_S)
            now, cpu = time.perf_counter(), time.process_time()
            gap = now - self.last_wake
            if gap - self.TICK_S > self.LATE_S:
                frozen = max(0.0, gap - self.TICK_S - (cpu - woke_cpu))
                if frozen > 0:
                    self.spans.append((self.last_wake, now, frozen))
            self.last_wake = now
            running = self.running
            if running and now - running[0] > self.sample_after_s and running[0] not in self.stacks:
                frame = sys._current_frames().get(running[1])
                if frame is not None:
                    self.stacks[running[0]] = "".join(traceback.format_stack(frame)[-6:])

    def frozen_between(self, start: float, end: float) -> float:
        """Seconds of [start, end] the process was not scheduled, waiting up to a
        second for the ticker to wake so a freeze still under way is counted."""
        deadline = time.perf_counter() + 1.0
        while self.last_wake < end and time.perf_counter() < deadline:
            time.sleep(self.TICK_S)
        total = 0.0
        for s, e, frozen in list(self.spans):
            if e > start and s < end:
                total += frozen * (min(e, end) - max(s, start)) / (e - s)
        return total


_FREEZES: _Freezes | None = None


def _freezes() -> _Freezes:
    global _FREEZES
    if _FREEZES is None:
        _FREEZES = _Freezes()
    return _FREEZES


class _SlowCallbacks:
    """Times every callback the loop runs (what asyncio's debug mode does for
    `slow_callback_duration`, without its cost: debug mode also captures a
    stack for every task and handle created, which on a busy machine and with
    the Cluster client's many tasks alone tipped start-ups over the limit).

    A callback holds the loop when its thread's own CPU time, or its wall
    time less the stretches the process was not scheduled at all (`_Freezes`),
    reaches the threshold. Time the garbage collector spends inside a
    callback is not the code's either: a full collection late in a long run
    walks every object the run still holds. Both are reported beside the
    callback and left out of the comparison."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.gc_s = 0.0  # garbage collection time so far, while watching
        self._gc_started = 0.0
        self._freezes = _freezes()
        self._slow: list[tuple[str, float, float, float, float]] = []

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_started

    @property
    def seen(self) -> list[str]:
        """The callbacks that held the loop, each with what was left out."""
        held = []
        for name, started, took, cpu, in_gc in self._slow:
            frozen = self._freezes.frozen_between(started, started + took)
            if max(cpu, took - frozen) - in_gc < self.threshold_s:
                continue
            line = (
                f"Executing {name} took {took:.3f} seconds ({cpu:.3f} s of CPU,"
                f" {in_gc:.3f} s in the garbage collector, the process unscheduled"
                f" {frozen:.3f} s)"
            )
            stack = self._freezes.stacks.get(started)
            held.append(line + (f"\n  the loop was at:\n{stack}" if stack else ""))
        return held

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        original = asyncio.events.Handle._run
        watcher, freezes = self, self._freezes
        freezes.sample_after_s = self.threshold_s / 2
        thread = threading.get_ident()

        def timed(handle: asyncio.Handle) -> None:
            started, cpu_before, gc_before = time.perf_counter(), time.thread_time(), watcher.gc_s
            freezes.running = (started, thread)
            try:
                original(handle)
            finally:
                freezes.running = None
                took = time.perf_counter() - started
                in_gc = watcher.gc_s - gc_before
                if took - in_gc >= watcher.threshold_s:
                    cpu = time.thread_time() - cpu_before
                    watcher._slow.append((repr(handle), started, took, cpu, in_gc))

        asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
        gc.callbacks.append(self._on_gc)
        try:
            yield
        finally:
            gc.callbacks.remove(self._on_gc)
            asyncio.events.Handle._run = original  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
async def no_blocking_calls(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Fail a test whose code holds the event loop longer than the threshold."""
    if request.node.get_closest_marker("allow_blocking"):
        yield
        return
    # A browser test shares the two cores with Chromium playing and decoding
    # audio: the whole process (media thread included) was seen frozen for
    # ~1 s there, so those tests get twice the threshold; blocking past it
    # still fails them.
    browser = request.node.get_closest_marker("browser") is not None
    watcher = _SlowCallbacks(BLOCKING_THRESHOLD_S * (2 if browser else 1))
    with watcher.watching():
        yield
    if watcher.seen:
        pytest.fail("the event loop was blocked:\n" + "\n".join(watcher.seen[:5]))
