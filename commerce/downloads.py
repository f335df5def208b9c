"""Download links: signed, short-lived and bound to the buyer.

A link names the buyer's identity, the room, the order, the product, the
format, the file's sha256, its title and when it expires, signed with
HMAC-SHA256 under a key derived from the server secret. Tampering with any
part (another order, format, buyer or a later expiry) breaks the signature;
the link works for whoever holds it until it expires. With local storage the
link is `<public URL>/files/dl/<token>/<file name>` (server/files/routes.py
checks it on every request); with S3 it is the store's presigned GET, with
the same lifetime, and no Python is in the download path.

Links are minted whenever an order is sent (`order_dict`) or a library is
read, never stored: only a `paid` order gets them, so a refund stops new
links at once and those already issued end at their expiry. Must not import
aiohttp, socketio or stripe.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from commerce import keys
from commerce.entitlements import EntitledFile, Entitlement, decode
from commerce.orders import Order, OrderStatus
from commerce.storage import FORMATS, Storage, tone_key
from kernel.errors import Forbidden

LINK_PATH = "/files/dl/"
VERSION = 1
DELIVERY_KEPT = 1000  # the newest paid-to-links times kept per room
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f/\\"<>:|?*]+')
TAMPERED = "this download link is not valid"
EXPIRED = "this download link has expired; your library has a fresh one"


@dataclass(frozen=True, slots=True)
class Grant:
    """The signed parts of one link."""

    identity: str
    room: str
    order_id: str
    product_id: str
    format: str
    sha256: str
    expires_at: int
    title: str

    @property
    def filename(self) -> str:
        return file_name(self.title, self.format)

    @property
    def key(self) -> str:
        return tone_key(self.sha256, self.format)


@functools.lru_cache(maxsize=4096)
def file_name(title: str, fmt: str) -> str:
    """`<clean title>.<ext>`: no path separators, quotes or control bytes."""
    clean = " ".join(UNSAFE_NAME.sub(" ", title).split())[:80].strip(" .") or "tone"
    return f"{clean}.{FORMATS[fmt][0]}"


@functools.cache
def _key(secret: str) -> bytes:
    # A key of its own: the secret also signs tokens, in another shape.
    return hmac.new(secret.encode(), b"droproom download link v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, grant: Grant) -> str:
    """The link's token: `<payload>.<signature>`, URL-safe."""
    parts = [VERSION, grant.identity, grant.room, grant.order_id, grant.product_id]
    parts += [grant.format, grant.sha256, grant.expires_at, grant.title]
    payload = _b64(json.dumps(parts, separators=(",", ":")).encode())
    mac = hmac.digest(_key(secret), payload.encode(), "sha256")
    return f"{payload}.{_b64(mac)}"


def verify(secret: str, token: str, filename: str, now: float) -> Grant:
    """The grant a link carries, or `Forbidden` (tampered, foreign, expired)."""
    payload, _, mac = token.partition(".")
    expected = _b64(hmac.digest(_key(secret), payload.encode(), "sha256"))
    if not mac or not hmac.compare_digest(mac.encode(), expected.encode()):
        raise Forbidden(TAMPERED)
    try:
        grant = _grant(json.loads(_unb64(payload)))
    except ValueError:  # signed by us yet unreadable: never, but never a 500 either
        raise Forbidden(TAMPERED) from None
    if grant is None or filename != grant.filename:
        raise Forbidden(TAMPERED)
    if grant.expires_at <= now:
        raise Forbidden(EXPIRED)
    return grant


def _grant(parts: Any) -> Grant | None:
    if not isinstance(parts, list) or len(parts) != 9 or parts[0] != VERSION:
        return None
    _, identity, room, order_id, product_id, fmt, sha, expires_at, title = parts
    if fmt not in FORMATS or not isinstance(sha, str) or not SHA256_RE.match(sha):
        return None
    if not isinstance(expires_at, int):
        return None
    return Grant(identity, room, order_id, product_id, fmt, sha, expires_at, title)


class Downloads:
    """Mints the links of paid orders: per entitled file, fresh each time."""

    def __init__(
        self,
        redis: Any,
        storage: Storage,
        secret: str,
        base_url: str,
        ttl_s: int,
        clock: Callable[[], float],
        *,
        on_issued: Callable[[list[dict[str, Any]]], None] | None = None,
        on_delivered: Callable[[float], None] | None = None,
    ) -> None:
        self._redis: Any = redis
        self.storage = storage
        self._secret = secret
        self._base = base_url.rstrip("/") + LINK_PATH
        self.ttl_s = ttl_s
        self.clock = clock  # the server's one clock, read to time a delivery
        self._on_issued = on_issued
        self._on_delivered = on_delivered

    async def entitlements_of(self, order: Order) -> tuple[Entitlement, ...]:
        raw = await self._redis.hget(keys.order(order.room, order.id), "entitlements")
        return decode(raw)

    async def links(
        self, order: Order, now: float, entitled: tuple[Entitlement, ...] | None = None
    ) -> list[dict[str, Any]]:
        """The order's downloads: none unless it is paid (refunds stop them)."""
        if order.status is not OrderStatus.PAID:
            return []
        if entitled is None:
            entitled = await self.entitlements_of(order)
        expires_at = int(now) + self.ttl_s
        found = []
        for ent in entitled:
            for f in ent.files:
                url = await self._url(order, ent, f, expires_at, now)
                found.append(
                    {
                        "product_id": ent.product_id,
                        "format": f.format,
                        "url": url,
                        "expires_at": expires_at,
                        "bytes": f.bytes,
                        "sha256": f.sha256,
                        "devices": list(FORMATS[f.format][2]),  # for the page's buttons
                    }
                )
        if found and self._on_issued is not None:
            self._on_issued(found)
        return found

    async def _url(
        self, order: Order, ent: Entitlement, f: EntitledFile, expires_at: int, now: float
    ) -> str:
        grant = Grant(
            order.identity, order.room, order.id, ent.product_id, f.format, f.sha256,
            expires_at, ent.title,
        )  # fmt: skip
        presigned = await self.storage.presign(f.key, expires_at - int(now), grant.filename)
        if presigned is not None:
            return presigned
        return f"{self._base}{sign(self._secret, grant)}/{quote(grant.filename)}"

    async def order_dict(
        self, order: Order, now: float, *, paid_since: float | None = None
    ) -> dict[str, Any]:
        """The order's wire shape, its receipt carrying fresh `downloads`.
        `paid_since` (the clock when its payment fact arrived) times the
        delivery of a just-paid order."""
        d = order.as_dict()
        if order.receipt is None or order.status is not OrderStatus.PAID:
            return d
        links = await self.links(order, now)
        d["receipt"] = {**order.receipt, "downloads": links}
        if links and paid_since is not None:
            await self._delivered(order.room, self.clock() - paid_since)
        return d

    async def _delivered(self, room: str, seconds: float) -> None:
        if self._on_delivered is not None:
            self._on_delivered(seconds)
        await self.record_delivery(room, seconds * 1000)

    async def record_delivery(self, room: str, ms: float) -> None:
        """Kept per room (newest first, capped) for the creator's report."""
        key = keys.delivery_ms(room)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, round(ms, 3))
            pipe.ltrim(key, 0, DELIVERY_KEPT - 1)
            await pipe.execute()

    async def delivery_ms(self, room: str) -> dict[str, float | None]:
        """p50/p95/p99 of the room's kept paid-to-links times (ms)."""
        raw = await self._redis.lrange(keys.delivery_ms(room), 0, -1)
        return percentiles(sorted(float(v) for v in raw))


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 of sorted values (None when empty)."""

    def rank(p: int) -> float | None:
        if not values:
            return None
        return values[max(0, math.ceil(len(values) * p / 100) - 1)]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99)}
