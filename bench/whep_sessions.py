"""Abandoned WHEP sessions: what N offers whose peer never connects cost the
server, and whether it gets it back.

    python bench/whep_sessions.py [--offers 300] [--rounds 3] [--settle 40]
                                  [--one-identity]

Runs `droproom serve` in a child process (embedded Redis, fresh data dir,
ICE on 127.0.0.1 only). Each round POSTs N WHEP offers made by a real aiortc
peer that is closed at once (its candidates lead nowhere: ICE never
completes), then waits `--settle` seconds for the server to reap them.
Reads the server's open file descriptors and RSS from /proc before the
round, right after the offers, and after the wait; prints a Markdown table.
By default every offer has its own identity (so per-identity caps do not
hide the cost); `--one-identity` sends them all with one listener token.
`--source DIR` runs the server of another checkout (a before/after run).
Session caps of the server under test are raised with
DROPROOM_WHEP_PER_ROOM / DROPROOM_WHEP_PER_PROCESS unless already set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from server import tokens
from server.ports import free_port
from server.roles import Role
from tests.media_helpers import abandoned_offer

ROOM = "bench"
SECRET = "bench-secret-0123456789abcdef0123456789"
ADMIN = "bench-admin-key"


def usage(pid: int) -> tuple[int, float]:
    """(open fds, RSS in MB) of a process, from /proc."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return fds, rss_kb / 1024


def start_server(data_dir: Path, port: int, source: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DROPROOM_SECRET": SECRET,
        "DROPROOM_ADMIN_KEY": ADMIN,
        "DROPROOM_ICE_HOSTS": "127.0.0.1",
        "PYTHONPATH": str(source),
    }
    env.setdefault("DROPROOM_WHEP_PER_ROOM", "100000")
    env.setdefault("DROPROOM_WHEP_PER_PROCESS", "100000")
    env.pop("REDIS_URL", None)
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir)]
    return subprocess.Popen(
        cmd, env=env, cwd=source, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


def token(identity: str) -> str:
    return tokens.mint(
        SECRET, room=ROOM, identity=identity, role=Role.LISTENER, name=identity,
        ttl_s=3600, now=time.time(),
    )  # fmt: skip


async def offer_round(url: str, offer: str, n: int, round_no: int, one: bool) -> Counter[int]:
    statuses: Counter[int] = Counter()
    shared = token("same-listener")
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            bearer = shared if one else token(f"l{round_no}-{i}")
            headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/sdp"}
            async with http.post(f"{url}/whep/{ROOM}", data=offer, headers=headers) as r:
                statuses[r.status] += 1
                await r.read()
    return statuses


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data_dir = Path(tempfile.mkdtemp(prefix="whep-bench-"))
    proc = start_server(data_dir, port, args.source)
    try:
        await wait_ready(url)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                url + "/api/v1/rooms",
                json={"id": ROOM, "title": "bench"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as r,
        ):
            assert r.status in (200, 201), r.status
        offer = await abandoned_offer()
        await asyncio.sleep(1)
        print(f"N={args.offers} abandoned WHEP offers per round, settle {args.settle:.0f} s")
        print("| round | answers | fds before | fds after offers | fds after settle "
              "| RSS MB before | RSS MB after offers | RSS MB after settle |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for round_no in range(1, args.rounds + 1):
            fd0, rss0 = usage(proc.pid)
            statuses = await offer_round(url, offer, args.offers, round_no, args.one_identity)
            fd1, rss1 = usage(proc.pid)
            await asyncio.sleep(args.settle)
            fd2, rss2 = usage(proc.pid)
            answers = ", ".join(f"{n}x{s}" for s, n in sorted(statuses.items()))
            print(
                f"| {round_no} | {answers} | {fd0} | {fd1} | {fd2} "
                f"| {rss0:.0f} | {rss1:.0f} | {rss2:.0f} |",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offers", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=40.0)
    parser.add_argument("--one-identity", action="store_true")
    parser.add_argument(
        "--source",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the checkout whose server runs (e.g. `git archive` of an older commit)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
