"""The embedded payment backend: `localstripe` in its own process on loopback.

Owns the child process (start on a free 127.0.0.1 port, wait until it
answers, register our webhook endpoint with it, stop it) and the child's
launcher (`python -m server.embedded.stripe_embed --port P --store FILE`), which keeps
localstripe's pickle store in our data directory instead of /tmp and exits by
itself when its parent goes away. The child is supervised: if it dies, it
is started again on the same port (with backoff) and our webhook endpoint is
registered with it again. Must not import `stripe` (only
`commerce.stripe_gateway` does) nor any domain package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from server.embedded.supervise import Supervisor
from server.ports import free_port

logger = logging.getLogger(__name__)

SECRET_KEY = "sk_test_droproom_embedded"
PUBLISHABLE_KEY = "pk_test_droproom_embedded"
WEBHOOK_ID = "droproom"
STORE_FILE = "localstripe.pickle"
WEBHOOK_SECRET_FILE = "localstripe_webhook_secret"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class EmbeddedKeys:
    """What the app needs to talk to the embedded backend."""

    api_base: str
    secret_key: str
    publishable_key: str
    webhook_secret: str
    js_url: str


def webhook_secret(data_dir: Path) -> str:
    """A webhook signing secret generated once and kept in the data dir (0600)."""
    path = data_dir / WEBHOOK_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    value = "whsec_" + secrets.token_hex(24)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def _child_env() -> dict[str, str]:
    # The child runs `-m server.embedded.stripe_embed`: make our package root importable.
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class EmbeddedStripe:
    """One localstripe child process; `start()` and `stop()` are a pair."""

    def __init__(
        self, data_dir: Path, *, port: int | None = None, restart_backoff_s: float = 1.0
    ) -> None:
        self._data_dir = data_dir
        self._port = port or free_port()
        self._proc: asyncio.subprocess.Process | None = None
        self._webhook_url: str | None = None
        self.supervisor = Supervisor(
            "localstripe", self._wait_exit, self._respawn, restart_backoff_s
        )
        self.keys = EmbeddedKeys(
            api_base=f"http://127.0.0.1:{self._port}",
            secret_key=SECRET_KEY,
            publishable_key=PUBLISHABLE_KEY,
            webhook_secret=webhook_secret(data_dir),
            js_url=f"http://127.0.0.1:{self._port}/js.stripe.com/v3/",
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> EmbeddedKeys:
        await self._spawn()
        self.supervisor.start()
        return self.keys

    async def _wait_exit(self) -> int | None:
        proc = self._proc
        if proc is None:  # stopped: nothing to watch until cancelled
            await asyncio.get_running_loop().create_future()
            return None
        return await proc.wait()

    async def _respawn(self) -> None:
        await self._spawn()
        if self._webhook_url is not None:
            await self.register_webhook(self._webhook_url)

    async def _spawn(self) -> None:
        store = self._data_dir / STORE_FILE
        log_path = self._data_dir / "localstripe.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "server.embedded.stripe_embed",
                "--port",
                str(self._port),
                "--store",
                str(store),
                stdout=log_fd,
                stderr=log_fd,
                stdin=asyncio.subprocess.DEVNULL,
                env=_child_env(),
                # its own session: a Ctrl-C in the terminal is for us, and we
                # stop it in order (it also exits by itself when we are gone)
                start_new_session=True,
                umask=0o077,  # its store holds customers and payment methods
            )
        finally:
            os.close(log_fd)
        logger.info("localstripe pid %s starting on port %s", self._proc.pid, self._port)
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        url = self.keys.js_url
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while True:
                if self._proc is not None and self._proc.returncode is not None:
                    raise RuntimeError("localstripe exited during start-up; see localstripe.log")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            return
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError("localstripe did not answer in time")
                await asyncio.sleep(0.05)

    async def register_webhook(self, url: str) -> None:
        """Point localstripe's (in-memory) webhook at our endpoint; redo after restarts."""
        self._webhook_url = url
        data = {"url": url, "secret": self.keys.webhook_secret}
        endpoint = f"{self.keys.api_base}/_config/webhooks/{WEBHOOK_ID}"
        async with aiohttp.ClientSession() as session, session.post(endpoint, data=data) as r:
            if r.status != 200:
                raise RuntimeError(f"localstripe refused the webhook ({r.status})")
        logger.info("localstripe webhook -> %s", url)

    async def reset(self) -> None:
        """Forget every object (tests only)."""
        async with aiohttp.ClientSession() as session:
            async with session.delete(f"{self.keys.api_base}/_config/data") as r:
                r.raise_for_status()

    async def stop(self) -> None:
        await self.supervisor.aclose()
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
        logger.info("localstripe pid %s stopped", proc.pid)


# ---- the child side -------------------------------------------------------


async def _watch_parent(parent: int) -> None:
    # Exit by ourselves when the server that started us is gone.
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    os._exit(0)


def _run_child(port: int, store_path: str) -> None:
    from aiohttp import web
    from localstripe import resources, server

    def load(self: resources.Store) -> None:
        import pickle

        with contextlib.suppress(FileNotFoundError, EOFError, pickle.UnpicklingError):
            with open(store_path, "rb") as f:
                old = pickle.load(f)
            self.clear()
            self.update(old)

    def dump(self: resources.Store) -> None:
        import pickle

        tmp = store_path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, store_path)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    resources.store.try_load_from_disk()
    parent = os.getppid()

    async def on_startup(app: web.Application) -> None:
        app["droproom_watchdog"] = asyncio.get_running_loop().create_task(_watch_parent(parent))

    server.app.on_startup.append(on_startup)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host="127.0.0.1", port=port, access_log=None, print=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe on loopback for droproom")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True)
    args = parser.parse_args(argv)
    _run_child(args.port, args.store)


if __name__ == "__main__":
    main()
