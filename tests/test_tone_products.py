"""Tone products as a creator and a buyer see them: the catalog's audio,
description, image and tags; the upload route (raw and multipart), its
processing announced to the rooms that show the product, the bad inputs
that change nothing, failures that keep the ready files, and a restart in
the middle of processing."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commerce import keys
from commerce import migrations as commerce_migrations
from commerce.storage import preview_key, tone_key
from media.tones import MAX_SOURCE_BYTES
from server.appkeys import REDIS, STORAGE
from server.config import Settings
from server.shop.resources import SHOP
from server.tones.resources import TONES
from tests.harness import ADMIN_KEY, Client, Harness
from tests.harness import test_settings as make_settings
from tests.sound_helpers import make_sound
from tests.test_operations import Served, serve, stop


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Settings:
    """The shared settings, with overrides given by indirect parametrisation."""
    return make_settings(tmp_path / "data", redis_url, **getattr(request, "param", {}))


READY = {
    "state": "ready",
    "progress": 1.0,
    "duration_s": 12.5,
    "loudness_lufs": -16.0,
    "true_peak_dbtp": -1.2,
    "preview_url": "/files/previews/" + "a" * 64 + ".mp3",
    "variants": [],
    "bundle": {"bytes": 10, "sha256": "b" * 64},
}


async def _product(server: Harness, pid: str = "tone", **fields: Any) -> dict[str, Any]:
    body = {"id": pid, "title": "Chime", "price": 199, "currency": "eur", "kind": "digital"}
    body.update(fields)
    return dict(await server.admin_post("/api/v1/products", body))


async def test_products_carry_description_image_tags_and_no_audio(server: Harness) -> None:
    made = await _product(
        server,
        description="A bright chime",
        image_url="https://img.example/chime.png",
        tags=["Calm", "retro", "calm"],
    )
    assert made["audio"] is None
    assert made["tags"] == ["calm", "retro"]
    status, got = await server.request("GET", "/api/v1/products/tone")
    assert status == 200
    assert got["description"] == "A bright chime"
    assert got["image_url"] == "https://img.example/chime.png"
    assert got["tags"] == ["calm", "retro"] and got["audio"] is None


async def test_bad_product_fields_are_refused_with_a_message(server: Harness) -> None:
    cases: list[dict[str, Any]] = [
        {"image_url": "javascript:alert(1)"},
        {"image_url": "//evil.example/x.png"},
        {"tags": {"a": 1}},
        {"tags": ["ok"] * 13},
        {"tags": [3]},
        {"tags": ["a" * 33]},
        {"description": 5},
    ]
    for i, extra in enumerate(cases):
        body: dict[str, Any] = {"id": f"p{i}", "title": "T", "price": 1, "currency": "eur"}
        body["kind"] = "digital"
        body |= extra
        status, answer = await server.request("POST", "/api/v1/products", json=body, admin=True)
        assert status == 400, (extra, answer)
        assert answer["error"]["code"] == "invalid" and answer["error"]["message"]
        status, _ = await server.request("GET", f"/api/v1/products/p{i}")
        assert status == 404


async def test_set_audio_shows_on_the_product(server: Harness) -> None:
    await _product(server)
    product = await server.app[SHOP].catalog.set_audio("tone", READY)
    assert product.audio is not None and product.audio["state"] == "ready"
    status, got = await server.request("GET", "/api/v1/products/tone")
    assert status == 200 and got["audio"] == READY


# --- uploads ------------------------------------------------------------------
ROOM = "tones"


async def _upload(
    server: Harness,
    data: Any,
    content_type: str | None = "audio/wav",
    pid: str = "tone",
    **query: Any,
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type} if content_type else {}
    params = {k: str(v) for k, v in query.items()}
    return await server.request(
        "POST",
        f"/api/v1/products/{pid}/audio",
        admin=True,
        data=data,
        headers=headers,
        params=params,
    )


async def _multipart(
    server: Harness, path: Path, pid: str = "tone", **query: Any
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    data = await asyncio.to_thread(path.read_bytes)
    form.add_field("file", data, filename=path.name, content_type="audio/mpeg")
    return await _upload(server, form, None, pid, **query)


async def _pinned(server: Harness, pid: str = "tone") -> Client:
    """A moderator of a room that pins the product: it hears product:updated."""
    await server.create_room(id=ROOM)
    mod = await server.connect(ROOM, "mod", "moderator")
    answer = await mod.call("slot:pin", {"slot": 1, "product_id": pid})
    assert answer["ok"], answer
    return mod


def _is(state: str) -> Callable[[Any], bool]:
    return lambda d: d["product"]["audio"] is not None and d["product"]["audio"]["state"] == state


async def test_a_raw_upload_processes_and_is_announced_to_the_room(
    server: Harness, tmp_path: Path
) -> None:
    await _product(server)
    mod = await _pinned(server)
    await server.create_room(id="dropping")  # shows it in a drop, not a slot
    host = await server.connect("dropping", "host", "host")
    now = time.time()
    drop = {"product_id": "tone", "starts_at": now + 600, "ends_at": now + 900, "stock": 5}
    assert (await host.call("drop:schedule", drop))["ok"]
    await server.create_room(id="elsewhere")  # does not show it
    stranger = await server.connect("elsewhere", "fan")
    sound = make_sound(tmp_path / "chime.wav", freq=660, seconds=6.0)
    status, body = await _upload(server, await asyncio.to_thread(sound.read_bytes))
    assert status == 202, body
    audio = body["product"]["audio"]
    assert audio["state"] == "processing" and audio["progress"] == 0
    assert audio["upload"]["state"] == "processing"
    ready = await mod.wait_for("product:updated", _is("ready"), timeout=120)
    progress = [
        d["product"]["audio"]["progress"]
        for d in mod.received("product:updated")
        if d["product"]["audio"]["state"] == "processing"
    ]
    assert progress and progress == sorted(progress) and 0 < max(progress) < 1, progress
    audio = ready["product"]["audio"]
    assert sorted(v["format"] for v in audio["variants"]) == ["3gp", "m4a", "m4r", "mp3", "opus"]
    assert audio["duration_s"] == pytest.approx(6.0, abs=0.1)
    assert audio["loudness_lufs"] == pytest.approx(-16.0, abs=1.0)
    assert audio["true_peak_dbtp"] <= -1.0
    sha = audio["preview"]["sha256"]
    assert audio["preview_url"] == f"/files/previews/{sha}.mp3"
    storage = server.app[STORAGE]
    assert await storage.exists(preview_key(sha))
    for v in audio["variants"]:
        assert await storage.exists(tone_key(v["sha256"], v["format"]))
    assert await storage.exists(tone_key(audio["bundle"]["sha256"], "bundle"))
    status, got = await server.request("GET", "/api/v1/products/tone")
    assert got["audio"]["state"] == "ready" and got["audio"]["variants"] == audio["variants"]
    await host.wait_for("product:updated", _is("ready"))
    assert stranger.received("product:updated") == []
    await _nothing_left(server)


async def _nothing_left(server: Harness) -> None:
    runner = server.app[TONES]
    async with asyncio.timeout(5):
        while runner.tasks:
            await asyncio.sleep(0.05)
    assert await runner.jobs.pending() == []
    assert not runner.sources.exists() or list(runner.sources.iterdir()) == []


async def _truncated(path: Path) -> bytes:
    data = await asyncio.to_thread(path.read_bytes)
    return data[: len(data) // 2]


async def test_bad_uploads_are_refused_and_change_nothing(server: Harness, tmp_path: Path) -> None:
    await _product(server)
    await _product(server, "tee", kind="physical")
    await _product(server, "club", kind="subscription")
    ready = await server.app[SHOP].catalog.set_audio("tone", READY)
    wav = await asyncio.to_thread((make_sound(tmp_path / "ok.wav", seconds=2.0)).read_bytes)
    flac = make_sound(tmp_path / "cut.flac", seconds=6.0)
    m4a = make_sound(tmp_path / "cut.m4a", seconds=6.0)
    cases: list[tuple[str, int, Any, str | None, dict[str, Any]]] = [
        ("not audio", 400, b"hello, this is not a sound " * 100, "audio/wav", {}),
        ("truncated flac", 400, await _truncated(flac), "audio/flac", {}),
        ("truncated m4a", 400, await _truncated(m4a), "audio/mp4", {}),
        ("empty", 400, b"", "audio/wav", {}),
        ("window outside", 400, wav, "audio/wav", {"start_s": 100}),
        ("no length", 400, wav, "audio/wav", {"length_s": 0}),
        ("bad start", 400, wav, "audio/wav", {"start_s": "soon"}),
        ("negative start", 400, wav, "audio/wav", {"start_s": -1}),
        ("not a sound type", 400, wav, "text/plain", {}),
        ("bad tags", 400, wav, "audio/wav", {"tags": ",".join(["t"] * 13)}),
        ("not digital", 400, wav, "audio/wav", {"pid": "tee"}),
        ("subscription", 400, wav, "audio/wav", {"pid": "club"}),
        ("unknown product", 404, wav, "audio/wav", {"pid": "nope"}),
    ]
    for name, want, data, content_type, query in cases:
        pid = query.pop("pid", "tone")
        status, body = await _upload(server, data, content_type, pid, **query)
        assert status == want, (name, status, body)
        assert body["error"]["message"], name
    form = aiohttp.FormData()
    form.add_field("other", wav, filename="x.wav", content_type="audio/wav")
    status, body = await _upload(server, form, None)
    assert status == 400 and "file" in body["error"]["message"]
    status, body = await server.request("POST", "/api/v1/products/tone/audio", data=wav)
    assert status == 401  # no admin key
    _, got = await server.request("GET", "/api/v1/products/tone")
    assert got["audio"] == ready.audio  # the ready audio, untouched
    for pid in ("tee", "club"):
        _, other = await server.request("GET", f"/api/v1/products/{pid}")
        assert other["audio"] is None
    await _nothing_left(server)


async def test_a_sound_beyond_the_size_limit_is_413(server: Harness) -> None:
    await _product(server)
    chunk = b"\0" * (1024 * 1024)

    async def endless() -> AsyncIterator[bytes]:  # no Content-Length: streamed
        for _ in range(MAX_SOURCE_BYTES // len(chunk) + 2):
            yield chunk

    status, body = await _upload(server, endless())
    assert status == 413 and "MB" in body["error"]["message"], body
    declared = {"Content-Length": str(MAX_SOURCE_BYTES + 10 * 1024 * 1024)}
    status, body = await server.request(
        "POST",
        "/api/v1/products/tone/audio",
        admin=True,
        data=b"x" * 1024,
        headers={"Content-Type": "audio/wav", **declared},
    )
    assert status in (400, 413), body  # refused before reading; aiohttp may cut it short
    _, got = await server.request("GET", "/api/v1/products/tone")
    assert got["audio"] is None
    await _nothing_left(server)


async def test_a_multipart_upload_keeps_the_window_and_tags(
    server: Harness, tmp_path: Path
) -> None:
    await _product(server)
    mod = await _pinned(server)
    sound = make_sound(tmp_path / "long.mp3", freq=440, seconds=8.0)
    status, body = await _multipart(server, sound, start_s=1.5, length_s=2.5, tags="Calm,retro")
    assert status == 202, body
    ready = await mod.wait_for("product:updated", _is("ready"), timeout=120)
    audio = ready["product"]["audio"]
    assert audio["duration_s"] == pytest.approx(2.5, abs=0.05)
    assert audio["window"] == {"start_s": 1.5, "length_s": pytest.approx(2.5, abs=0.05)}
    assert audio["tags"] == ["calm", "retro"]
    assert audio["upload"]["state"] == "ready"
    await _nothing_left(server)


@pytest.mark.parametrize("settings", [{"tone_job_timeout_s": 0.05}], indirect=True)
async def test_a_failed_job_ends_failed_with_its_reason(server: Harness, tmp_path: Path) -> None:
    await _product(server)
    mod = await _pinned(server)
    sound = make_sound(tmp_path / "chime.wav", seconds=3.0)
    status, body = await _upload(server, await asyncio.to_thread(sound.read_bytes))
    assert status == 202, body
    failed = await mod.wait_for("product:updated", _is("failed"), timeout=60)
    audio = failed["product"]["audio"]
    assert "took longer" in audio["error"] and audio["variants"] == []
    assert audio["upload"]["state"] == "failed"
    _, got = await server.request("GET", "/api/v1/products/tone")
    assert got["audio"]["state"] == "failed" and got["audio"]["error"] == audio["error"]
    await _nothing_left(server)


async def test_a_failed_upload_keeps_the_ready_audio(server: Harness, tmp_path: Path) -> None:
    await _product(server)
    mod = await _pinned(server)
    sound = make_sound(tmp_path / "chime.wav", seconds=3.0)
    data = await asyncio.to_thread(sound.read_bytes)
    assert (await _upload(server, data))[0] == 202
    first = (await mod.wait_for("product:updated", _is("ready"), timeout=120))["product"]["audio"]
    server.app[TONES].pool().job_timeout_s = 0.01  # the next job cannot finish in time
    status, body = await _upload(server, data, start_s=1)
    assert status == 202
    audio = body["product"]["audio"]
    assert audio["state"] == "ready" and audio["upload"]["state"] == "processing"
    assert audio["variants"] == first["variants"]  # buyers still get the files on sale

    def upload_failed(d: Any) -> bool:
        return bool(d["product"]["audio"]["upload"]["state"] == "failed")

    after = (await mod.wait_for("product:updated", upload_failed, timeout=60))["product"]["audio"]
    assert after["state"] == "ready" and after["variants"] == first["variants"]
    assert after["preview_url"] == first["preview_url"]
    assert "took longer" in after["upload"]["error"] and "error" not in after
    await _nothing_left(server)


# --- restarts -------------------------------------------------------------------
async def _served_upload(s: Served, pid: str, data: bytes) -> dict[str, Any]:
    body = {"id": pid, "title": pid, "price": 99, "currency": "eur", "kind": "digital"}
    status, _ = await s.request("POST", "/api/v1/products", admin=True, json=body)
    assert status == 201
    headers = {"Content-Type": "audio/wav", "Authorization": f"Bearer {ADMIN_KEY}"}
    url = f"{s.url}/api/v1/products/{pid}/audio"
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as r:
        answer = await r.json()
        assert r.status == 202, answer
    return dict(answer["product"]["audio"])


async def _settled(s: Served, pid: str) -> dict[str, Any]:
    async with asyncio.timeout(120):
        while True:
            _, got = await s.request("GET", f"/api/v1/products/{pid}")
            audio = got["audio"]  # type: ignore[index]
            if audio["state"] != "processing":
                return dict(audio)
            await asyncio.sleep(0.2)


# SIGKILL: the jobs' leases (2 s) run out. SIGTERM: the stopping server lets
# go of them, so the next one resumes them at once (a 600 s lease would
# otherwise hold them past the test's time limit).
@pytest.mark.parametrize("sig,lease", [(signal.SIGKILL, "2"), (signal.SIGTERM, "600")])
async def test_a_server_stopped_mid_job_resumes_or_fails_it_on_restart(
    tmp_path: Path, sig: signal.Signals, lease: str
) -> None:
    data = tmp_path / "data"
    sound = make_sound(tmp_path / "long.wav", freq=550, seconds=30.0)
    raw = await asyncio.to_thread(sound.read_bytes)
    first = await serve(data, DROPROOM_TONE_LEASE_S=lease)
    try:
        kept = await _served_upload(first, "kept", raw)
        lost = await _served_upload(first, "lost", raw)
    finally:
        os.kill(first.proc.pid, sig)  # mid-processing
        await first.proc.wait()
        await first.reader
    assert kept["state"] == lost["state"] == "processing"
    source = data / "tones" / "sources" / f"{lost['upload']['job_id']}.source"
    assert source.is_file()
    source.unlink()  # this one's sound is gone when the server comes back
    second = await serve(data, DROPROOM_TONE_LEASE_S=lease)
    try:
        resumed, failed = await asyncio.gather(_settled(second, "kept"), _settled(second, "lost"))
    finally:
        await stop(second)
    assert resumed["state"] == "ready", resumed
    assert resumed["duration_s"] == pytest.approx(30.0, abs=0.1) and len(resumed["variants"]) == 5
    assert failed["state"] == "failed" and "upload it again" in failed["error"], failed
    assert list((data / "tones" / "sources").iterdir()) == []
    assert "resumed" in second.log()


async def test_rooms_that_showed_a_product_before_the_index_learn_of_it(
    server: Harness,
) -> None:
    await _product(server)
    await _pinned(server)
    redis = server.app[REDIS]
    await redis.delete(keys.product_shown("tone"))  # as data from before the index
    catalog = server.app[SHOP].catalog
    assert await catalog.rooms_showing("tone") == []
    assert await commerce_migrations.products_shown(redis, 0.0) >= 1
    assert await catalog.rooms_showing("tone") == [ROOM]


async def test_a_newer_upload_supersedes_one_still_processing(
    server: Harness, tmp_path: Path
) -> None:
    await _product(server)
    mod = await _pinned(server)
    data = await asyncio.to_thread(make_sound(tmp_path / "long.wav", seconds=30.0).read_bytes)
    status, older = await _upload(server, data)
    assert status == 202
    status, newer = await _upload(server, data, start_s=10, length_s=4)
    assert status == 202
    newer_job = newer["product"]["audio"]["upload"]["job_id"]
    assert newer_job != older["product"]["audio"]["upload"]["job_id"]
    ready = await mod.wait_for("product:updated", _is("ready"), timeout=120)
    audio = ready["product"]["audio"]
    assert audio["upload"]["job_id"] == newer_job
    assert audio["window"]["start_s"] == 10 and audio["duration_s"] == pytest.approx(4, abs=0.05)
    await _nothing_left(server)
    assert not any(  # the older job never reported ready
        d["product"]["audio"]["state"] == "ready"
        and d["product"]["audio"]["upload"]["job_id"] != newer_job
        for d in mod.received("product:updated")
    )


async def test_sources_no_job_holds_are_removed_once_old(server: Harness) -> None:
    runner = server.app[TONES]
    old, fresh = runner.source_path("tone_old"), runner.source_path("tone_fresh")
    for path in (old, fresh):
        await asyncio.to_thread(path.write_bytes, b"half an upload")
    hours_ago = time.time() - 7200
    await asyncio.to_thread(os.utime, old, (hours_ago, hours_ago))
    await runner.remove_strays(time.time())
    assert not old.exists() and fresh.exists()  # a fresh one may be an upload under way


async def test_two_sweeps_at_once_share_the_strays_without_failing(server: Harness) -> None:
    """The scheduled sweep and another one (another process on the same data
    dir) may walk the same folder: a source the other removed is skipped."""
    runner = server.app[TONES]
    hours_ago = time.time() - 7200
    paths = [runner.source_path(f"tone_{i}") for i in range(300)]

    def write_old() -> None:
        for path in paths:
            path.write_bytes(b"half an upload")
            os.utime(path, (hours_ago, hours_ago))

    await asyncio.to_thread(write_old)
    now = time.time()
    await asyncio.gather(*(runner.remove_strays(now) for _ in range(4)))
    assert not any(path.exists() for path in paths)
