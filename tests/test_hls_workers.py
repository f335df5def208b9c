"""HLS with `serve --workers 2`: the worker that owns the room's media
writes the HLS, and every worker answers the playlist (it lives in Redis)
and the segments (the node's file store), so a player may land on any."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from rooms.store import RoomStore
from server.roles import Role
from tests.hls_helpers import decode_aac, parse
from tests.media_helpers import TonePublisher, peak_hz, wait_connected
from tests.test_media_owner import ROOM, Node, Whip, create_room, env, lease_of, started, store
from tests.test_media_owner import token as room_token

__all__ = ["env", "store"]


async def get_via(node: Node, worker: str, path: str) -> tuple[int, bytes]:
    """GET `path` from one worker (its own unix socket)."""
    connector = aiohttp.UnixConnector(path=str(node.socket(worker)))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.get(f"http://{worker}{path}") as resp,
    ):
        return resp.status, await resp.read()


async def test_every_worker_serves_the_owners_hls(
    tmp_path: Path, env: dict[str, str], store: RoomStore
) -> None:
    env = env | {"DROPROOM_HLS_SEGMENT_S": "1", "DROPROOM_HLS_WINDOW": "3"}
    async with started(tmp_path / "data", 2, env) as node:
        await create_room(node)
        whip = Whip(f"http://w1/whip/{ROOM}", "alice", via=node.socket("w1"))
        publisher = await TonePublisher.start(550, whip)
        await wait_connected(publisher.pc)
        owner = (await lease_of(store)).endpoint["worker"]
        other = "w2" if owner == "w1" else "w1"
        path = f"/hls/{ROOM}/index.m3u8?token={room_token('ann', Role.LISTENER)}"
        texts: dict[str, str] = {}
        async with asyncio.timeout(30):
            while len(texts) < 2 or any(t.count("#EXTINF") < 2 for t in texts.values()):
                await asyncio.sleep(0.2)
                for worker in (owner, other):
                    status, body = await get_via(node, worker, path)
                    if status == 200:
                        texts[worker] = body.decode()
        # the worker that does not write the HLS serves its playlist and segments
        playlist = parse(node.url + path, texts[other])
        newest = playlist.uris[-1].removeprefix(node.url)
        assert newest.startswith(f"/hls/{ROOM}/")
        status, segment = await get_via(node, other, newest)
        assert status == 200
        codec, pcm = decode_aac(segment)
        assert codec == "aac" and abs(peak_hz(pcm) - 550) < 5
        await publisher.close()
