"""Tone products as a creator and a buyer see them: the catalog's audio,
description, image and tags; the upload route (raw and multipart), its
processing announced to the rooms that show the product, the bad inputs
that change nothing, failures that keep the ready files, and a restart in
the middle of processing."""

from __future__ import annotations

from typing import Any

from server.shop.resources import SHOP
from tests.harness import Harness

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
