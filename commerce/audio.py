"""A digital product's audio as the catalog keeps it: the ready files (what
buyers get) and the latest upload (what the creator is waiting for), stored
apart in the product's hash so that a failed or running upload never hides
the files that are on sale. The wire shape (`product.audio`,
docs/protocol.md "Tone products as built") is derived from both here.

    ready record  hash field `audio`: JSON, the PROTOCOL audio object with
                  state "ready" (variants, bundle, preview_url, loudness...)
    latest upload hash fields up_job, up_state (processing/ready/failed),
                  up_progress (0..1), up_error, up_at

Every change is commerce/lua/product_audio.lua on the product's key. Pure
apart from that: must not import aiohttp, socketio, av or `media/`.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from commerce.events import PRODUCT_UPDATED
from commerce.storage import preview_key
from kernel.events import Event, to_room

PREVIEW_URL_PREFIX = "/files/"
# the hash fields of the product that belong to its audio
AUDIO_FIELDS = ("audio", "up_job", "up_state", "up_progress", "up_error", "up_at")


class AudioState(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Upload:
    """The latest upload of a product's sound."""

    job_id: str
    state: AudioState
    progress: float
    error: str | None
    started_at: float

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "job_id": self.job_id,
            "state": str(self.state),
            "progress": self.progress,
            "started_at": self.started_at,
        }
        if self.error:
            d["error"] = self.error
        return d


def new_job_id() -> str:
    return "tone_" + secrets.token_hex(8)


def preview_url(sha256: str) -> str:
    """Public, cacheable: `/files/previews/<sha256>.mp3` (server/files serves it)."""
    return PREVIEW_URL_PREFIX + preview_key(sha256)


def ready_audio(
    *,
    duration_s: float,
    loudness_lufs: float,
    true_peak_dbtp: float,
    preview: Mapping[str, Any],
    variants: Sequence[Mapping[str, Any]],
    bundle: Mapping[str, Any],
    window: Mapping[str, float],
    tags: Sequence[str],
) -> dict[str, Any]:
    """The ready record of a processed sound. `preview` and `bundle` carry at
    least `sha256` and `bytes`; each variant is the PROTOCOL variant dict."""
    return {
        "state": str(AudioState.READY),
        "progress": 1.0,
        "duration_s": duration_s,
        "loudness_lufs": loudness_lufs,
        "true_peak_dbtp": true_peak_dbtp,
        "preview_url": preview_url(str(preview["sha256"])),
        "preview": dict(preview),
        "variants": [dict(v) for v in variants],
        "bundle": dict(bundle),
        "window": dict(window),
        "tags": list(tags),
    }


def upload_from_hash(raw: Mapping[bytes, bytes | None]) -> Upload | None:
    job = raw.get(b"up_job")
    if not job:
        return None
    error = raw.get(b"up_error")
    return Upload(
        job_id=job.decode(),
        state=AudioState((raw.get(b"up_state") or b"processing").decode()),
        progress=float(raw.get(b"up_progress") or 0),
        error=error.decode() if error else None,
        started_at=float(raw.get(b"up_at") or 0),
    )


def ready_from_hash(raw: Mapping[bytes, bytes | None]) -> dict[str, Any] | None:
    blob = raw.get(b"audio")
    return json.loads(blob) if blob else None


def _waiting(upload: Upload) -> dict[str, Any]:
    """No ready files: what the latest upload is doing is the product's audio."""
    view: dict[str, Any] = {
        "state": str(upload.state),
        "progress": upload.progress,
        "duration_s": None,
        "loudness_lufs": None,
        "true_peak_dbtp": None,
        "preview_url": None,
        "variants": [],
        "bundle": None,
    }
    if upload.error:
        view["error"] = upload.error
    return view


def audio_view(ready: Mapping[str, Any] | None, upload: Upload | None) -> dict[str, Any] | None:
    """`product.audio`: the ready files when there are any (state `ready`,
    whatever a later upload does), else the latest upload's state; `upload`
    always tells the latest upload (the host console's progress bar)."""
    if upload is None:
        return dict(ready) if ready is not None else None
    is_ready = ready is not None and ready.get("state") == AudioState.READY
    view = dict(ready) if is_ready and ready is not None else _waiting(upload)
    view["upload"] = upload.as_dict()
    return view


def audio_from_hash(raw: Mapping[bytes, bytes | None]) -> dict[str, Any] | None:
    return audio_view(ready_from_hash(raw), upload_from_hash(raw))


_PREVIEW_URL_RE = re.compile(r"/previews/([0-9a-f]{64})\.mp3$")


def preview_sha256(audio: Mapping[str, Any] | None) -> str | None:
    """The sha256 of the ready preview (a moderator may play it into the
    room), or None while there is none."""
    if audio is None or audio.get("state") != AudioState.READY:
        return None
    sha = (audio.get("preview") or {}).get("sha256")
    if isinstance(sha, str) and sha:
        return sha
    found = _PREVIEW_URL_RE.search(str(audio.get("preview_url") or ""))
    return found.group(1) if found else None


def encode_ready(audio: Mapping[str, Any]) -> str:
    return json.dumps(dict(audio), separators=(",", ":"))


def product_updated(product: Mapping[str, Any], rooms: Sequence[str]) -> list[Event]:
    """`product:updated` `{"product"}` to every room that shows it."""
    return [to_room(room, PRODUCT_UPDATED, {"product": dict(product)}) for room in rooms]
