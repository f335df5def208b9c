"""Fixtures: a real redis-server for the session, a real server per test, and
a guard that fails any test whose code blocks the event loop."""

import asyncio
import contextlib
import gc
import logging
import os
import time
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


class _SlowCallbacks:
    """Times every callback the loop runs (what asyncio's debug mode does for
    `slow_callback_duration`, without its cost: debug mode also captures a
    stack for every task and handle created, which on a busy machine and with
    the Cluster client's many tasks alone tipped start-ups over the limit).

    Time the garbage collector spends inside a callback is not the code's: a
    full collection late in a long run walks every object the run still holds.
    It is reported beside the callback and left out of the comparison."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self.seen: list[str] = []
        self.gc_s = 0.0  # garbage collection time so far, while watching
        self._gc_started = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_s += time.perf_counter() - self._gc_started

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        original = asyncio.events.Handle._run
        watcher = self

        def timed(handle: asyncio.Handle) -> None:
            started, gc_before = time.perf_counter(), watcher.gc_s
            try:
                original(handle)
            finally:
                took = time.perf_counter() - started
                in_gc = watcher.gc_s - gc_before
                if took - in_gc >= watcher.threshold_s:
                    watcher.seen.append(
                        f"Executing {handle!r} took {took:.3f} seconds"
                        f" ({in_gc:.3f} s of it in the garbage collector)"
                    )

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
