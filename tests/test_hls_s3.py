"""HLS on S3 (`DROPROOM_STORAGE_URL=s3://...`, moto's real S3 server on
loopback): the segments are objects under `hls/<room>/<session>/`, marked
immutable, that the playlist names by their S3 URL (a CDN's with
`DROPROOM_HLS_BASE_URL`), so players fetch them from S3 without a token and
without our server; they decode as AAC carrying the published tone; those
that slid out of the window are deleted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from commerce.storage import S3Storage
from server.appkeys import STORAGE
from server.config import Settings
from tests.harness import Harness, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.hls_helpers import decode_aac, get, headers_of, playlist_url, wait_playlist
from tests.media_helpers import peak_hz
from tests.test_delivery_s3 import ACCESS_KEY, SECRET_KEY, Moto, moto
from tests.test_hls import ROOM, TONE_HZ, publish

__all__ = ["moto"]
BUCKET = "hls-bucket"
PUBLIC_HLS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/live/hls/*",
        }
    ],
}


@pytest.fixture
def settings(
    tmp_path: Path, redis_url: str, moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return make_settings(
        tmp_path / "data",
        redis_url,
        storage_url=f"s3://{BUCKET}/live",
        hls_segment_s=1.0,
        hls_window=3,
    )


@pytest.fixture
async def server(settings: Settings, moto: Moto) -> AsyncIterator[Harness]:
    await moto.ready()
    harness = await start_server(settings)
    storage = harness.app[STORAGE]
    assert isinstance(storage, S3Storage)
    await storage.client.create_bucket(Bucket=BUCKET)
    # what docs/operations.md asks of a bucket without a CDN: the public reads hls/
    await storage.client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_HLS))
    yield harness
    await stop_server(harness)


async def stored_segments(storage: S3Storage) -> list[str]:
    listed = await storage.client.list_objects_v2(Bucket=BUCKET, Prefix=f"live/hls/{ROOM}/")
    return [item["Key"] for item in listed.get("Contents", [])]


async def test_segments_live_on_s3_and_expire_there(server: Harness, moto: Moto) -> None:
    await server.create_room(id=ROOM, title="hls on s3")
    pub, whip = await publish(server)
    token = server.token(ROOM, "ann", "listener")
    first = await wait_playlist(server, ROOM, token, segments=2)
    newest = first.uris[-1]
    assert newest.startswith(f"{moto.url}/{BUCKET}/live/hls/{ROOM}/")
    status, headers, body = await get(newest)  # straight from S3, no token, no signature
    assert status == 200 and "X-Amz-Signature" not in newest
    assert "immutable" in headers_of(headers)["cache-control"]
    codec, pcm = decode_aac(body)
    assert codec == "aac" and abs(peak_hz(pcm) - TONE_HZ) < 5
    storage = server.app[STORAGE]
    assert isinstance(storage, S3Storage)
    oldest = first.uris[0].split(f"/{BUCKET}/", 1)[1]
    assert oldest in await stored_segments(storage)
    window, grace = 3, 2
    await wait_playlist(server, ROOM, token, past=first.sequence + window + grace + 1)
    keys = await stored_segments(storage)
    assert oldest not in keys and 0 < len(keys) <= window + grace + 1
    assert await whip.request("DELETE") == 200  # the room's media closes: all of it goes
    await pub.close()
    async with asyncio.timeout(10):
        while (await get(playlist_url(server, ROOM, token)))[0] != 404:
            await asyncio.sleep(0.1)
    assert await stored_segments(storage) == []
