"""The catalog: products (physical merch, digital items, subscription packs)
with a price in minor units, a currency and optional tracked stock.

Owns the product value, its validation and its Redis hash. Must not import
aiohttp, socketio, stripe or `rooms`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import msgpack
import redis.asyncio as aioredis

from commerce import keys
from kernel import validate
from kernel.errors import Conflict, Invalid, NotFound
from kernel.lua import Scripts

CURRENCY_RE = re.compile(r"^[a-z]{3}$")
MAX_PRICE = 99_999_999  # Stripe's largest amount (8 digits) in minor units
MAX_STOCK = 10_000_000


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


def parse_product(p: Mapping[str, Any]) -> Product:
    """A product from an admin's payload; every field checked, nothing stored."""
    pid = validate.ident(p, "id") if p.get("id") is not None else new_product_id()
    return Product(
        id=pid,
        title=validate.text(p, "title", max_len=200),
        price=validate.integer(p, "price", lo=1, hi=MAX_PRICE),
        currency=parse_currency(p),
        kind=parse_kind(p),
        stock=validate.opt_integer(p, "stock", lo=0, hi=MAX_STOCK),
        description=validate.opt_text(p, "description", max_len=2000),
    )


def new_product_id() -> str:
    return "prod_" + secrets.token_hex(8)


# A product is stored as one msgpack blob: read only by Python, compact, and
# decoded faster than JSON on every slot and drop view.
def product_from_blob(raw: bytes) -> Product:
    d = msgpack.unpackb(raw)
    return Product(
        id=d["id"],
        title=d["title"],
        price=int(d["price"]),
        currency=d["currency"],
        kind=Kind(d["kind"]),
        stock=d["stock"],
        description=d.get("description", ""),
    )


def product_blob(product: Product) -> bytes:
    d = product.as_dict()
    d.pop("remaining")
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
        return product

    async def product(self, product_id: str) -> Product | None:
        """The product alone (no stock read)."""
        raw = await self._redis.hget(keys.product(product_id), "data")
        return product_from_blob(raw) if raw is not None else None

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
        return product_from_blob(raw[b"data"]), inv

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
