"""The `droproom` command line: serve, token, demo, mail, log verify."""

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from accounts import eml, identities
from kernel.errors import DomainError
from kernel.eventlog import Verdict, verify
from rooms.store import RoomStore
from server import migrations, redis_client, tokens, workers
from server.app import DRAIN_S, close_connections, create_app
from server.appkeys import SCHEDULER, SETTINGS
from server.audio import routes as audio_routes
from server.config import Settings
from server.embedded import datadir
from server.embedded.redis_embed import EmbeddedRedis
from server.roles import Role
from server.rooms import demo
from server.scheduler import system_clock

logger = logging.getLogger(__name__)

DEMO_LINKS_FILE = "demo-links.txt"


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return Settings.from_env(**overrides)


async def _with_app(settings: Settings, body: Callable[[web.Application], Awaitable[None]]) -> None:
    """Open the app's resources (not its HTTP listener), run `body`, close."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await body(app)
    finally:
        await runner.cleanup()


def _links_text(app: web.Application) -> str:
    found = demo.links(app)
    return (
        f"demo room: {app[SETTINGS].public_url}/r/{demo.DEMO_ROOM}\n"
        f"  host:      {found.host}\n"
        f"  moderator: {found.moderator}\n"
        f"  listener:  {found.listener}\n"
    )


def _print_links(app: web.Application) -> None:
    sys.stdout.write(_links_text(app))
    sys.stdout.flush()


def _hand_out_links(app: web.Application, to_terminal: bool) -> None:
    """`serve --demo`: the links carry 7-day tokens, so they go to a terminal
    only; when the output is a log (a service, a container), they go to a
    private file in the data dir, and `droproom demo` prints them on demand."""
    if to_terminal:
        _print_links(app)
        return
    path = app[SETTINGS].data_dir / DEMO_LINKS_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(_links_text(app))
    sys.stdout.write(f"demo links (7-day tokens) written to {path}; `droproom demo` prints them\n")


async def _seed_demo(app: web.Application) -> None:
    created = await demo.seed_room(app, app[SCHEDULER].clock())
    for seeder in app[demo.SEEDERS]:
        await seeder(app, created)


# A room holds a few hundred objects per connection (engine.io's tasks,
# queues, timers): at thousands of listeners each full collection walks half a
# million live objects for 0.25-0.4 s and frees nothing, stalling broadcasts
# (bench/broadcast.py). Young objects are collected far less often instead.
# `DROPROOM_GC_THRESHOLDS="700,10,10"` puts back Python's defaults.
GC_THRESHOLDS = (50_000, 20, 100)


def gc_thresholds() -> tuple[int, ...]:
    given = os.environ.get("DROPROOM_GC_THRESHOLDS", "").strip()
    return tuple(int(part) for part in given.split(",")) if given else GC_THRESHOLDS


async def _orphaned(parent: int, stop: asyncio.Event) -> None:
    """A worker stops by itself when its parent is gone (killed)."""
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    logger.warning("the parent process is gone; stopping")
    stop.set()


async def serve(
    settings: Settings,
    with_demo: bool,
    *,
    as_worker: bool = False,
    links_to_terminal: bool | None = None,
) -> None:
    """One server process: the whole node (`--workers 1`), or one worker of
    `serve --workers N` (`as_worker`: the port shared, a unix socket of its
    own for long-polling handoffs, a ready line for the parent)."""
    gc.set_threshold(*gc_thresholds())
    workers.raise_open_files()
    # Signals first: a SIGTERM that arrives while starting still shuts down
    # cleanly (the embedded Redis flushed and stopped, peers closed).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    watchdog = loop.create_task(_orphaned(os.getppid(), stop)) if as_worker else None
    app = create_app(settings, worker_of_node=as_worker)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=DRAIN_S)
    try:
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port, reuse_port=as_worker).start()
        if as_worker:
            path = workers.worker_socket(settings.data_dir, settings.worker)
            path.unlink(missing_ok=True)
            await web.UnixSite(runner, str(path)).start()
        if with_demo:
            await _seed_demo(app)
        if as_worker:
            sys.stdout.write(workers.READY.format(settings.worker) + "\n")
        else:
            sys.stdout.write(f"droproom listening on {settings.public_url}\n")
        if with_demo:
            to_terminal = sys.stdout.isatty() if links_to_terminal is None else links_to_terminal
            _hand_out_links(app, to_terminal)
        sys.stdout.flush()
        await stop.wait()
        logger.info("shutting down")
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await _shutdown(runner, app)


async def _shutdown(runner: web.AppRunner, app: web.Application) -> None:
    """Stop accepting, close Socket.IO and the scheduler, drain, close."""
    started = time.monotonic()
    for site in list(runner.sites):
        await site.stop()
    await close_connections(app)
    await runner.cleanup()
    logger.info("stopped in %.1f s", time.monotonic() - started)


def cmd_token(args: argparse.Namespace) -> int:
    try:
        identities.check_mintable(args.identity)
    except DomainError as exc:
        sys.stderr.write(f"droproom token: {exc.message}\n")
        return 2
    settings = _settings(args)
    token = tokens.mint(
        settings.secret,
        room=args.room,
        identity=args.identity,
        role=Role.parse(args.role),
        name=args.name or args.identity,
        ttl_s=args.ttl,
        now=system_clock(),
    )
    sys.stdout.write(token + "\n")
    return 0


def cmd_mail(args: argparse.Namespace) -> int:
    """The latest mails the embedded transport wrote (no SMTP configured)."""
    directory = _settings(args).mail_dir
    found = eml.latest(directory, args.limit)
    if not found:
        sys.stdout.write(f"no mail in {directory}\n")
    for saved in found:
        sys.stdout.write(f"{saved.date}  to {saved.to}  {saved.subject}\n")
        if saved.link:
            sys.stdout.write(f"  sign in: {saved.link}\n")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    async def body(app: web.Application) -> None:
        await _seed_demo(app)
        _print_links(app)

    asyncio.run(_with_app(_settings(args), body))
    return 0


async def _with_redis(settings: Settings, body: Callable[[str], Awaitable[Any]]) -> Any:
    """Only Redis is needed: the embedded one of the data dir, or REDIS_URL."""
    embedded = None if settings.redis_url else EmbeddedRedis(settings.data_dir)
    url = settings.redis_url or await embedded.start()  # type: ignore[union-attr]
    try:
        return await body(url)
    finally:
        if embedded is not None:
            await embedded.stop()


async def _verify_log(settings: Settings, room: str) -> Verdict:
    async def body(url: str) -> Verdict:
        client = await redis_client.open_client(
            url, cluster=settings.redis_cluster, decode_responses=True
        )
        try:
            return verify([e async for e in RoomStore(client).log_entries(room)])
        finally:
            await client.aclose()

    result: Verdict = await _with_redis(settings, body)
    return result


async def _migrate(settings: Settings) -> list[str]:
    async def body(url: str) -> list[str]:
        client = await redis_client.open_client(url, cluster=settings.redis_cluster)
        try:
            applied = await migrations.run(client, system_clock())
            return [f"{a.step.version}: {a.step.name} ({a.count} changed)" for a in applied]
        finally:
            await client.aclose()

    done: list[str] = await _with_redis(settings, body)
    return done


def cmd_migrate(args: argparse.Namespace) -> int:
    done = asyncio.run(_migrate(_settings(args)))
    for line in done:
        sys.stdout.write(f"migrated {line}\n")
    sys.stdout.write(f"schema at version {migrations.CURRENT}\n")
    return 0


def cmd_log_verify(args: argparse.Namespace) -> int:
    verdict = asyncio.run(_verify_log(_settings(args), args.room))
    if verdict.ok:
        sys.stdout.write(f"ok: {verdict.checked} entries of room {args.room} chain correctly\n")
        return 0
    sys.stdout.write(
        f"BROKEN at entry {verdict.bad_entry} (after {verdict.checked} good entries): "
        f"{verdict.reason}\n"
    )
    return 1


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number, 1 or more: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="droproom", description="live audio rooms that sell")
    sub = top.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--data-dir")
    s.add_argument(
        "--demo",
        action="store_true",
        help="create the demo room; links to a terminal, else to DATA_DIR/demo-links.txt",
    )
    s.add_argument(
        "--workers",
        type=_at_least_one,
        help="server processes on the one port (default: DROPROOM_WORKERS, else the cores)",
    )
    # One worker of `serve --workers N`, started by it (not for people).
    w = sub.add_parser("serve-worker")
    w.add_argument("--worker", required=True)
    w.add_argument("--host")
    w.add_argument("--port", type=int)
    w.add_argument("--data-dir")
    w.add_argument("--demo", action="store_true")
    w.add_argument("--links-to-terminal", action="store_true")
    t = sub.add_parser("token", help="print an access token")
    t.add_argument("--room", required=True)
    t.add_argument("--identity", required=True)
    t.add_argument("--role", required=True, choices=[r.label for r in Role])
    t.add_argument("--name")
    t.add_argument("--ttl", type=int, default=12 * 3600)
    t.add_argument("--data-dir")
    d = sub.add_parser("demo", help="create the demo room; print host, moderator, listener links")
    d.add_argument("--data-dir")
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    sub.add_parser("cert", help="write a P-256 DTLS cert/key for FFmpeg/OBS").add_argument(
        "--out", required=True
    )
    ml = sub.add_parser("mail", help="list the latest mails written under DATA_DIR/mail")
    ml.add_argument("--data-dir")
    ml.add_argument("--limit", type=int, default=10)
    m = sub.add_parser("migrate", help="bring the data to the current key layout (idempotent)")
    m.add_argument("--data-dir")
    lg = sub.add_parser("log", help="the room's event log")
    lsub = lg.add_subparsers(dest="log_command", required=True)
    lv = lsub.add_parser("verify", help="check the hash chain; name the first bad entry")
    lv.add_argument("room")
    lv.add_argument("--data-dir")
    return top


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # aioice logs every ICE candidate pair check at INFO: ten lines per listener
    logging.getLogger("aioice").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    os.umask(datadir.UMASK)  # whatever we or our children write to the data dir is private
    if args.command == "serve":
        settings = _settings(args)
        count = workers.worker_count(args.workers, settings)
        if count == 1:
            asyncio.run(serve(settings, args.demo))
        else:
            asyncio.run(workers.run_node(settings, count, args.demo))
        return 0
    if args.command == "serve-worker":
        settings = _settings(args).with_(worker=args.worker)
        asyncio.run(
            serve(settings, args.demo, as_worker=True, links_to_terminal=args.links_to_terminal)
        )
        return 0
    if args.command == "token":
        return cmd_token(args)
    if args.command == "demo":
        return cmd_demo(args)
    if args.command == "mail":
        return cmd_mail(args)
    if args.command == "migrate":
        return cmd_migrate(args)
    if args.command == "cert":
        return audio_routes.cert_command(args.out)
    return cmd_log_verify(args)


if __name__ == "__main__":
    sys.exit(main())
