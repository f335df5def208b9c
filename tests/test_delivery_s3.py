"""Delivery from S3 (PROTOCOL `DROPROOM_STORAGE_URL=s3://BUCKET/PREFIX`),
against a real S3-compatible server (moto's standalone server) started on
loopback by the test: download links are S3 presigned GETs with the link's
lifetime that a plain HTTP client downloads (no Python of ours in the path);
previews are served through; S3 down answers 503 with an error body; AWS
credentials and presigned URLs never reach the logs."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from commerce import downloads
from commerce.storage import S3Storage
from kernel.errors import Unavailable
from server.appkeys import SCHEDULER, STORAGE
from server.config import Settings
from tests.delivery_helpers import VARIANTS, buy, drop_of, fetch, sha, tone
from tests.harness import Harness, free_port, start_server, stop_server
from tests.harness import test_settings as make_settings

ROOM = "s3tones"
ACCESS_KEY = "AKIADROPROOMTESTKEY"
SECRET_KEY = "droproom-test-secret-key-never-logged-0123"
BUCKET = "tones-bucket"


class Moto:
    """moto's S3 server as a child process on 127.0.0.1, stopped by its pid."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self) -> None:
        async with asyncio.timeout(20), aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(self.url + "/moto-api/"):
                        return
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def moto() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.stop()


@pytest.fixture
def settings(
    tmp_path: Path, redis_url: str, moto: Moto, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return make_settings(tmp_path / "data", redis_url, storage_url=f"s3://{BUCKET}/drops")


@pytest.fixture
async def server(settings: Settings, moto: Moto) -> AsyncIterator[Harness]:
    await moto.ready()
    harness = await start_server(settings)
    storage = harness.app[STORAGE]
    assert isinstance(storage, S3Storage)
    await storage.client.create_bucket(Bucket=BUCKET)
    yield harness
    await stop_server(harness)


async def test_links_are_presigned_s3_urls_a_plain_client_downloads(
    server: Harness, moto: Moto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    files = await tone(server, tmp_path)
    storage = server.app[STORAGE]
    assert isinstance(storage, S3Storage)
    listed = await storage.client.list_objects_v2(Bucket=BUCKET, Prefix="drops/tones/")
    assert len(listed["Contents"]) == len(VARIANTS) + 1  # under the prefix
    drop_id = await drop_of(server, ROOM)
    _, order = await buy(server, ROOM, "alice", drop_id)
    links = {d["format"]: d for d in order["receipt"]["downloads"]}
    assert sorted(links) == sorted([*VARIANTS, "bundle"])
    urls = []
    for fmt, link in links.items():
        url = link["url"]
        urls.append(url)
        assert url.startswith(f"{moto.url}/{BUCKET}/drops/tones/{link['sha256']}")
        query = parse_qs(urlsplit(url).query)
        assert query["X-Amz-Expires"] == [str(server.settings.download_ttl_s)]
        status, headers, body = await fetch(url)  # straight from S3
        assert status == 200 and sha(body) == link["sha256"] == sha(files[fmt])
        assert headers["Content-Disposition"].startswith('attachment; filename="Morning Bell.')
    # The library answers presigned links too.
    status, body = await server.request(
        "GET", "/api/v1/me/library", token=server.token(ROOM, "alice")
    )
    (item,) = body["items"]
    for d in item["downloads"]:
        assert d["url"].startswith(moto.url) and (await fetch(d["url"]))[0] == 200
    # A link of our own shape (minted before a switch to S3) is sent to S3.
    now = server.app[SCHEDULER].clock()
    grant = downloads.Grant(
        "alice", ROOM, order["id"], "ring", "m4r", links["m4r"]["sha256"], int(now) + 60, "Bell"
    )
    own = f"{server.url}/files/dl/{downloads.sign(server.settings.secret, grant)}/Bell.m4r"
    async with aiohttp.ClientSession() as http, http.get(own, allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"].startswith(moto.url)
        urls.append(resp.headers["Location"])
    # Nothing secret in the logs: neither credentials nor presigned URLs.
    text = caplog.text
    assert SECRET_KEY not in text and "X-Amz-Signature" not in text
    for url in urls:
        assert url not in text and parse_qs(urlsplit(url).query)["X-Amz-Signature"][0] not in text


async def test_s3_down_answers_503_with_an_error_body(
    server: Harness, moto: Moto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"ID3" + bytes(4000)
    digest = sha(body)
    src = tmp_path / "p.mp3"
    src.write_bytes(body)
    await server.app[STORAGE].put_file(src, f"previews/{digest}.mp3", "audio/mpeg")
    preview = f"{server.url}/files/previews/{digest}.mp3"
    status, headers, got = await fetch(preview)
    assert status == 200 and got == body
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert (await fetch(f"{server.url}/files/previews/{'0' * 64}.mp3"))[0] == 404
    moto.stop()
    status, headers, got = await fetch(preview)
    assert status == 503, got
    assert headers["Content-Type"].startswith("application/json")
    assert b'"code": "unavailable"' in got
    with pytest.raises(Unavailable):
        await server.app[STORAGE].put_file(src, "tones/" + "1" * 64 + ".m4r", "audio/mp4")
    assert SECRET_KEY not in caplog.text and ACCESS_KEY not in caplog.text


async def test_a_bucket_that_refuses_writes_answers_unavailable(
    moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing bucket (a store to fix) fails an upload with `unavailable`
    and one error line, never a traceback; reads of it find nothing."""
    await moto.ready()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    storage = S3Storage("no-such-bucket", "p", endpoint_url=moto.url)
    await storage.open()
    try:
        src = tmp_path / "x.m4r"
        src.write_bytes(b"x" * 100)
        with pytest.raises(Unavailable):
            await storage.put_file(src, "tones/" + "2" * 64 + ".m4r", "audio/mp4")
        assert "refused tones/" in caplog.text and SECRET_KEY not in caplog.text
        assert await storage.exists("tones/" + "2" * 64 + ".m4r") is False
    finally:
        await storage.aclose()
