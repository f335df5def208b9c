"""Tone products as a creator and a buyer see them: the catalog's audio,
description, image and tags; the upload route (raw and multipart), its
processing announced to the rooms that show the product, the bad inputs
that change nothing, failures that keep the ready files, and a restart in
the middle of processing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commerce.storage import preview_key, tone_key
from server.appkeys import STORAGE
from server.shop.resources import SHOP
from server.tones.resources import TONES
from tests.harness import Client, Harness
from tests.sound_helpers import make_sound

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
    sound = make_sound(tmp_path / "chime.wav", freq=660, seconds=6.0)
    status, body = await _upload(server, sound.read_bytes())
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
    await _nothing_left(server)


async def _nothing_left(server: Harness) -> None:
    runner = server.app[TONES]
    async with asyncio.timeout(5):
        while runner.tasks:
            await asyncio.sleep(0.05)
    assert await runner.jobs.pending() == []
    assert not runner.sources.exists() or list(runner.sources.iterdir()) == []
