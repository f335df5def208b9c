"""A digital product whose sound is ready, for the browser tests: the files
of every format written into the server's storage (as the pipeline would),
a real MP3 preview (it plays in the page) and the product's `audio`."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

from commerce.storage import FORMATS, preview_key, tone_key
from server.appkeys import STORAGE
from server.shop.resources import SHOP
from tests.harness import Harness
from tests.sound_helpers import make_sound

VARIANT_FORMATS = ("opus", "m4r", "m4a", "mp3", "3gp")


async def _put(server: Harness, src: Path, key: str, content_type: str) -> None:
    await server.app[STORAGE].put_file(src, key, content_type)


async def ready_tone(
    server: Harness, work: Path, pid: str = "chime", title: str = "Harbour chime", price: int = 199
) -> dict[str, Any]:
    """Create the product (eur, digital) with ready audio; returns the audio
    object, whose variants' and bundle's sha256 the downloads must match."""
    await server.admin_post(
        "/api/v1/products",
        {"id": pid, "title": title, "price": price, "currency": "eur", "kind": "digital"},
    )
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    variants = []
    files: dict[str, dict[str, Any]] = {}
    for fmt in (*VARIANT_FORMATS, "bundle"):
        data = f"{pid} {fmt} ".encode() + os.urandom(4096)
        sha = hashlib.sha256(data).hexdigest()
        src = work / f"{pid}.{fmt}"
        src.write_bytes(data)
        await _put(server, src, tone_key(sha, fmt), FORMATS[fmt][1])
        files[fmt] = {"bytes": len(data), "sha256": sha}
        if fmt != "bundle":
            variants.append(
                {
                    "format": fmt,
                    "codec": fmt,
                    "container": fmt,
                    "bytes": len(data),
                    "sha256": sha,
                    "sample_rate": 48000,
                    "channels": 1,
                    "bitrate": 64000,
                }
            )
    preview = make_sound(work / f"{pid}-preview.mp3", freq=880.0, seconds=3.0)
    psha = hashlib.sha256(preview.read_bytes()).hexdigest()
    await _put(server, preview, preview_key(psha), "audio/mpeg")
    audio = {
        "state": "ready",
        "progress": 1.0,
        "duration_s": 3.0,
        "loudness_lufs": -16.0,
        "true_peak_dbtp": -1.5,
        "preview_url": f"/files/previews/{psha}.mp3",
        "variants": variants,
        "bundle": files["bundle"],
    }
    await server.app[SHOP].catalog.set_audio(pid, audio)
    return audio
