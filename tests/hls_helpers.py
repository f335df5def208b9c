"""HLS as a player sees it: read the live playlist with a room token,
resolve its segment URIs against the playlist's URL, fetch segments without
a token, decode them with PyAV and find the tone they carry."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
import av
import numpy as np
import numpy.typing as npt

from tests.harness import Harness


@dataclass(frozen=True)
class Playlist:
    url: str
    text: str
    sequence: int  # EXT-X-MEDIA-SEQUENCE
    uris: list[str]  # absolute, resolved as players do
    durations: list[float]


def playlist_url(server: Harness, room: str, token: str | None) -> str:
    query = f"?token={token}" if token is not None else ""
    return f"{server.url}/hls/{room}/index.m3u8{query}"


async def get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def parse(url: str, text: str) -> Playlist:
    sequence, uris, durations = 0, [], []
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            durations.append(float(line[8:].split(",")[0]))
        elif line and not line.startswith("#"):
            uris.append(urljoin(url, line))
    return Playlist(url, text, sequence, uris, durations)


async def read_playlist(server: Harness, room: str, token: str) -> Playlist | None:
    url = playlist_url(server, room, token)
    status, _, body = await get(url)
    return parse(url, body.decode()) if status == 200 else None


async def wait_playlist(
    server: Harness,
    room: str,
    token: str,
    *,
    past: int = -1,
    segments: int = 1,
    limit_s: float = 20,
) -> Playlist:
    """The playlist once it lists `segments` segments, the newest after sequence `past`."""
    async with asyncio.timeout(limit_s):
        while True:
            found = await read_playlist(server, room, token)
            if found and len(found.uris) >= segments:
                if found.sequence + len(found.uris) - 1 > past:
                    return found
            await asyncio.sleep(0.2)


def decode_aac(body: bytes) -> tuple[str, npt.NDArray[np.float32]]:
    """(codec name, mono samples at 48 kHz) of one segment."""
    with av.open(io.BytesIO(body), "r") as container:
        stream = container.streams.audio[0]
        name = stream.codec_context.name
        parts = [f.to_ndarray().astype(np.float32).reshape(-1) for f in container.decode(stream)]
    return name, np.concatenate(parts) if parts else np.zeros(0, np.float32)


def headers_of(raw: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in dict(raw).items()}
