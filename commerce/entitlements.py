"""Entitlements: the exact files a paid order gives its buyer.

Read from the catalog just before the paid transition and stored on the
order by that same script (commerce/lua/order_settle.lua), once: a later
upload gives the product new files for new buyers, and earlier buyers keep
the files they bought (content-addressed, immutable). A digital product
whose audio is not `ready` when it is paid entitles nothing (the order is
paid; there is nothing to download and the library does not fill in later).
Pure values plus one reader of the catalog. Must not import aiohttp,
socketio or stripe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from commerce.catalog import Catalog, Kind
from commerce.orders import Order
from commerce.storage import FORMATS, tone_key

BUNDLE = "bundle"


@dataclass(frozen=True, slots=True)
class EntitledFile:
    format: str  # a key of commerce.storage.FORMATS (`bundle` is the zip)
    sha256: str
    bytes: int
    key: str  # where the storage holds it (commerce.storage.tone_key)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "sha256": self.sha256, "bytes": self.bytes, "key": self.key}


@dataclass(frozen=True, slots=True)
class Entitlement:
    product_id: str
    title: str  # the line's title when bought: the downloaded file's name
    files: tuple[EntitledFile, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "title": self.title,
            "files": [f.as_dict() for f in self.files],
        }


def files_of(audio: Mapping[str, Any] | None) -> tuple[EntitledFile, ...]:
    """A product's current files (its variants, then the bundle) when its
    audio is ready; none otherwise."""
    if not audio or audio.get("state") != "ready":
        return ()
    found = [_file(v.get("format"), v) for v in audio.get("variants") or ()]
    bundle = audio.get("bundle")
    if isinstance(bundle, Mapping):
        found.append(_file(BUNDLE, bundle))
    return tuple(f for f in found if f is not None)


def _file(fmt: Any, d: Mapping[str, Any]) -> EntitledFile | None:
    sha, size = d.get("sha256"), d.get("bytes")
    if fmt not in FORMATS or not isinstance(sha, str) or not isinstance(size, int):
        return None
    return EntitledFile(fmt, sha, size, tone_key(sha, fmt))


def encode(entitlements: tuple[Entitlement, ...]) -> str:
    """The order hash's `entitlements` field ('' for none)."""
    if not entitlements:
        return ""
    return json.dumps([e.as_dict() for e in entitlements], separators=(",", ":"))


def decode(raw: str | bytes | None) -> tuple[Entitlement, ...]:
    if not raw:
        return ()
    return tuple(
        Entitlement(
            d["product_id"],
            d["title"],
            tuple(
                EntitledFile(f["format"], f["sha256"], int(f["bytes"]), f["key"])
                for f in d["files"]
            ),
        )
        for d in json.loads(raw)
    )


class Entitlements:
    """What an order would entitle its buyer to, read from the catalog now."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def of(self, order: Order) -> tuple[Entitlement, ...]:
        found: list[Entitlement] = []
        seen: set[str] = set()
        for line in order.lines:
            if line.product_id in seen:
                continue
            seen.add(line.product_id)
            product = await self._catalog.product(line.product_id)
            if product is None or product.kind is not Kind.DIGITAL:
                continue
            files = files_of(product.audio)
            if files:
                found.append(Entitlement(line.product_id, line.title, files))
        return tuple(found)
