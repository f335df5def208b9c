"""Shared by the delivery tests: a digital tone product whose files sit in the
server's storage (as the pipeline leaves them), and a buyer who pays for it
through localstripe with the official SDK's flow (real card, real webhook)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import aiohttp

from commerce.storage import FORMATS, tone_key
from server.appkeys import STORAGE
from server.shop.resources import SHOP
from tests.harness import Client, Harness

VARIANTS = ("opus", "m4r", "m4a", "mp3", "3gp")
SIZES = {"opus": 40_000, "m4r": 64_000, "m4a": 64_000, "mp3": 60_000, "3gp": 6_500}


async def tone(
    server: Harness, tmp: Path, pid: str = "ring", title: str = "Morning Bell", seed: str = "a"
) -> dict[str, bytes]:
    """A ready tone: random bytes per format (and a bundle) put in storage and
    recorded as the product's audio. Creates the product when it is new."""
    shop = server.app[SHOP]
    if await shop.catalog.product(pid) is None:
        product = {"id": pid, "title": title, "price": 199, "currency": "eur", "kind": "digital"}
        await server.admin_post("/api/v1/products", product)
    files = {fmt: os.urandom(SIZES[fmt]) + seed.encode() for fmt in VARIANTS}
    files["bundle"] = os.urandom(300_000) + seed.encode()  # above SMALL_FILE: sendfile
    variants = []
    for fmt, body in files.items():
        sha = hashlib.sha256(body).hexdigest()
        src = tmp / f"{pid}-{seed}.{fmt}"
        src.write_bytes(body)
        await server.app[STORAGE].put_file(src, tone_key(sha, fmt), FORMATS[fmt][1])
        if fmt != "bundle":
            variants.append(
                {"format": fmt, "codec": fmt, "container": fmt, "bytes": len(body)}
                | {"sha256": sha, "sample_rate": 48000, "channels": 1, "bitrate": 64000}
            )
    bundle = files["bundle"]
    audio = {
        "state": "ready",
        "progress": 1.0,
        "duration_s": 20.0,
        "loudness_lufs": -16.0,
        "true_peak_dbtp": -1.5,
        "preview_url": "/files/previews/" + "c" * 64 + ".mp3",
        "variants": variants,
        "bundle": {"bytes": len(bundle), "sha256": hashlib.sha256(bundle).hexdigest()},
    }
    await shop.catalog.set_audio(pid, audio)
    return files


async def drop_of(server: Harness, room: str, pid: str = "ring", stock: int = 50) -> str:
    """A live drop of the product in the room (the room is made if new)."""
    new = {"id": room, "title": "Tones"}
    status, _ = await server.request("POST", "/api/v1/rooms", new, admin=True)
    assert status in (201, 409), status
    mod = await server.connect(room, "mod", "moderator")
    now = time.time()
    payload: dict[str, Any] = {"product_id": pid, "starts_at": now, "ends_at": now + 600}
    answer = await mod.call("drop:schedule", payload | {"stock": stock, "per_buyer_limit": 5})
    assert answer["ok"], answer
    await mod.close()
    return str(answer["drop"]["id"])


async def buy(server: Harness, room: str, identity: str, drop_id: str) -> tuple[Client, Any]:
    """The buyer connected to the room, and their paid order as `order:updated` said it."""
    buyer = await server.connect(room, identity)
    assert (await buyer.call("cart:add", {"drop_id": drop_id}))["ok"]
    answer = await buyer.call("checkout:start", {"payment_method": "pm_card_visa"})
    assert answer["ok"] and answer["status"] == "succeeded", answer
    paid = await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    return buyer, paid["order"]


async def fetch(url: str, **headers: str) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, resp.headers, await resp.read()


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
