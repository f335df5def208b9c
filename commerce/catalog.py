"""The catalog: products (physical merch, digital items, subscription packs)
with a price in minor units, a currency and optional tracked stock.

Owns the product value, its validation and its Redis hash. Must not import
aiohttp, socketio, stripe or `rooms`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack
import redis.asyncio as aioredis

from commerce import keys
from commerce.audio import AUDIO_FIELDS, audio_from_hash, encode_ready
from kernel import validate
from kernel.errors import Conflict, Forbidden, Invalid, NotFound
from kernel.lua import Scripts
from kernel.owners import ADMIN_OWNER, owner_or_admin

CURRENCY_RE = re.compile(r"^[a-z]{3}$")
MAX_PRICE = 99_999_999  # Stripe's largest amount (8 digits) in minor units
MAX_STOCK = 10_000_000
MAX_TAGS = 12
MAX_TAG_LEN = 32
MAX_IMAGE_URL = 500
TAG_RE = re.compile(r"^[^\x00-\x1f,]+$")


class Kind(StrEnum):
    PHYSICAL = "physical"
    DIGITAL = "digital"
    SUBSCRIPTION = "subscription"


@dataclass(frozen=True, slots=True)
class Inventory:
    """Units of one stock: given == left + held + sold, always."""

    given: int
    left: int
    held: int
    sold: int


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    price: int
    currency: str
    kind: Kind
    stock: int | None  # units given; None for unlimited
    description: str = ""
    image_url: str = ""
    tags: tuple[str, ...] = ()
    # the creator's account id, or ADMIN_OWNER (kernel.owners)
    owner: str = ADMIN_OWNER
    # the wire shape of commerce.audio (ready files and latest upload), or None
    audio: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def as_dict(self, remaining: int | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "price": self.price,
            "currency": self.currency,
            "kind": str(self.kind),
            "stock": self.stock,
            "remaining": remaining,
            "description": self.description,
            "image_url": self.image_url or None,
            "tags": list(self.tags),
            "audio": self.audio,
            "owner": self.owner,
        }


def parse_currency(p: Mapping[str, Any], key: str = "currency") -> str:
    value = p.get(key)
    if not isinstance(value, str) or not CURRENCY_RE.match(value.lower()):
        raise Invalid(f"{key} must be a three-letter ISO 4217 code")
    return value.lower()


def parse_kind(p: Mapping[str, Any]) -> Kind:
    value = p.get("kind")
    try:
        return Kind(str(value))
    except ValueError:
        raise Invalid("kind must be physical, digital or subscription") from None


def parse_image_url(p: Mapping[str, Any]) -> str:
    """An absolute http(s) URL or a path on this server; empty for none."""
    value = validate.opt_text(p, "image_url", max_len=MAX_IMAGE_URL)
    if value and not (value.startswith(("https://", "http://", "/")) and " " not in value):
        raise Invalid("image_url must be an http(s) URL or a path starting with /")
    if value.startswith("//"):
        raise Invalid("image_url must be an http(s) URL or a path starting with /")
    return value


def parse_tags(p: Mapping[str, Any], key: str = "tags") -> tuple[str, ...]:
    """Up to MAX_TAGS short words (moods: `calm`, `retro`), lower case, once each."""
    value = p.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise Invalid(f"{key} must be a list of at most {MAX_TAGS} words")
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise Invalid(f"{key} must be a list of strings")
        tag = validate.text({key: item}, key, max_len=MAX_TAG_LEN).lower()
        if not TAG_RE.match(tag):
            raise Invalid(f"a tag may not hold commas or control characters: {tag!r}")
        if tag not in tags:
            tags.append(tag)
    return tuple(tags)


def parse_product(p: Mapping[str, Any], owner: str = ADMIN_OWNER) -> Product:
    """A product from an admin's or creator's payload; every field checked,
    nothing stored."""
    pid = validate.ident(p, "id") if p.get("id") is not None else new_product_id()
    return Product(
        owner=owner,
        id=pid,
        title=validate.text(p, "title", max_len=200),
        price=validate.integer(p, "price", lo=1, hi=MAX_PRICE),
        currency=parse_currency(p),
        kind=parse_kind(p),
        stock=validate.opt_integer(p, "stock", lo=0, hi=MAX_STOCK),
        description=validate.opt_text(p, "description", max_len=2000),
        image_url=parse_image_url(p),
        tags=parse_tags(p),
    )


def check_shown_by(product: Product, room_owner: str) -> None:
    """A room pins and drops only its owner's products; a room of the admin
    may show any. `Forbidden` otherwise."""
    if room_owner != ADMIN_OWNER and product.owner != room_owner:
        raise Forbidden(
            f"product {product.id} belongs to another creator; "
            "a room shows only its owner's products"
        )


def new_product_id() -> str:
    return "prod_" + secrets.token_hex(8)


# A product is stored as one msgpack blob: read only by Python, compact, and
# decoded faster than JSON on every slot and drop view.
# Its audio lives in fields of its own beside the blob (commerce.audio), so
# an upload's progress never rewrites the product.
def product_from_blob(raw: bytes, audio: dict[str, Any] | None = None) -> Product:
    d = msgpack.unpackb(raw)
    return Product(
        id=d["id"],
        title=d["title"],
        price=int(d["price"]),
        currency=d["currency"],
        kind=Kind(d["kind"]),
        stock=d["stock"],
        description=d.get("description", ""),
        image_url=d.get("image_url") or "",
        tags=tuple(d.get("tags") or ()),
        owner=owner_or_admin(d.get("owner")),
        audio=audio,
    )


def product_from_hash(raw: Mapping[bytes, bytes]) -> Product:
    return product_from_blob(raw[b"data"], audio_from_hash(raw))


def product_blob(product: Product) -> bytes:
    d = product.as_dict()
    for derived in ("remaining", "audio"):
        d.pop(derived)
    return bytes(msgpack.packb(d))


class Catalog:
    """Products in Redis. Created once; the stock counters move only in scripts."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._scripts = Scripts(redis)

    async def create(self, product: Product) -> Product:
        tracked = "1" if product.stock is not None else "0"
        args: list[Any] = [product_blob(product), tracked, product.stock or 0]
        args += [product.price, product.currency, product.id]
        created = await self._scripts.run(
            "commerce/product_create", [keys.product(product.id)], args
        )
        if not created:
            raise Conflict(f"product {product.id} already exists")
        if product.owner != ADMIN_OWNER:
            await self._redis.sadd(keys.owned_products(product.owner), product.id)
        return product

    async def owned(self, owner: str, limit: int = 500) -> list[Product]:
        """The products a creator owns, by id."""
        ids = sorted(i.decode() for i in await self._redis.smembers(keys.owned_products(owner)))
        found = [await self.product(pid) for pid in ids[:limit]]
        return [p for p in found if p is not None]

    async def every(self, limit: int = 500) -> list[Product]:
        """Every product (the admin's studio list), by id: a SCAN of the
        product hashes (every node of a Cluster), not for hot paths."""
        ids: set[str] = set()
        async for key in self._redis.scan_iter(match="{product:*}", count=500):
            name = key.decode()
            if name.endswith("}"):
                ids.add(name[len("{product:") : -1])
        found = [await self.product(pid) for pid in sorted(ids)[:limit]]
        return [p for p in found if p is not None]

    async def product(self, product_id: str) -> Product | None:
        """The product alone (no stock read)."""
        names = ("data", *AUDIO_FIELDS)
        values = await self._redis.hmget(keys.product(product_id), *names)
        if values[0] is None:
            return None
        return product_from_hash({n.encode(): v for n, v in zip(names, values, strict=True)})

    async def set_audio(self, product_id: str, audio: dict[str, Any]) -> Product:
        """Record `audio` (the PROTOCOL audio object, normally `ready`) as the
        product's files, as is. Uploads go through `tone_jobs` instead, whose
        changes carry their job id (commerce/lua/product_audio.lua)."""
        await self.change_audio(product_id, "set", "", encode_ready(audio))
        product = await self.product(product_id)
        if product is None:
            raise NotFound(f"no product {product_id}")
        return product

    async def change_audio(self, product_id: str, op: str, job_id: str, value: str) -> bool:
        """One change of the audio fields (see product_audio.lua); False when
        `job_id` is not the product's latest upload any more."""
        script, product_key = "commerce/product_audio", keys.product(product_id)
        changed = await self._scripts.run(script, [product_key], [op, job_id, value])
        return bool(changed)

    async def find(self, product_id: str) -> tuple[Product, Inventory | None] | None:
        """The product and its whole stock: its pool plus every room's share."""
        raw = await self._redis.hgetall(keys.product(product_id))
        if not raw:
            return None
        inv = inventory_from_hash(raw)
        if inv is not None:
            for room in await self._redis.smembers(keys.product_rooms(product_id)):
                share = await self._redis.hgetall(keys.share(room.decode(), product_id))
                inv = _plus(inv, inventory_from_hash(share))
        return product_from_hash(raw), inv

    async def note_shown(self, product_id: str, room: str) -> None:
        """A room pins the product or drops it: it hears about its changes."""
        await self._redis.sadd(keys.product_shown(product_id), room)

    async def rooms_showing(self, product_id: str) -> list[str]:
        """Rooms that pinned or dropped the product, or hold a share of it."""
        shown = await self._redis.smembers(keys.product_shown(product_id))
        shown |= await self._redis.smembers(keys.product_rooms(product_id))
        return sorted(r.decode() for r in shown)

    async def get(self, product_id: str) -> tuple[Product, Inventory | None]:
        found = await self.find(product_id)
        if found is None:
            raise NotFound(f"no product {product_id}")
        return found


def _plus(a: Inventory, b: Inventory | None) -> Inventory:
    if b is None:
        return a
    return Inventory(a.given + b.given, a.left + b.left, a.held + b.held, a.sold + b.sold)


def inventory_from_hash(raw: Mapping[bytes, bytes]) -> Inventory | None:
    if raw.get(b"tracked") != b"1":
        return None
    return Inventory(
        given=int(raw[b"given"]),
        left=int(raw[b"left"]),
        held=int(raw[b"held"]),
        sold=int(raw[b"sold"]),
    )
