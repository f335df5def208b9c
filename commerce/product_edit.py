"""Editing a product (`PATCH /api/v1/products/{id}`): what may change, the
stock rules, and the one script that applies the change.

What may change: `title`, `description`, `price`, `currency`, `tags`,
`image_url` and `stock`. `id`, `kind` and `owner` never change.

Stock rules (`stock` is the new number of units given, as at creation):
- a product keeps its kind of stock: unlimited (`null`) stays unlimited and
  a tracked stock stays tracked (409 otherwise: make a new product);
- the new stock is never below the units held (in carts, awaiting payment)
  plus sold, counted over the product's pool and every room's share;
- units are added to or taken from the pool only (units a room's share
  holds belong to that room until it gives them back), so a cut is at most
  the units left in the pool (409 saying how many could go);
- the pool changes only if it is as it was read (a cart pulling units in
  between answers 409 "try again"): never a lost update.

An edit is written only if the product is still as it was read (the
script compares the stored blob): a concurrent edit (another tab, an
image upload) is read again and the change applied on top of it.

A price or currency change reaches the rooms' shares of the product (what
a new cart line costs); lines already in carts, orders and scheduled drops
keep the price they were made with. Must not import aiohttp, socketio or
stripe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.catalog import (
    MAX_PRICE,
    MAX_STOCK,
    Catalog,
    Inventory,
    Product,
    parse_currency,
    parse_image_url,
    parse_tags,
    product_blob,
    product_from_blob,
)
from kernel import validate
from kernel.errors import Conflict, Invalid, NotFound
from kernel.lua import Scripts

EDITABLE = ("title", "description", "price", "currency", "tags", "image_url", "stock")
FIXED = ("id", "kind", "owner")


@dataclasses.dataclass(frozen=True, slots=True)
class Edit:
    """A checked edit: the product as it will read, and the stock to give
    (`None`: the stock is not being changed)."""

    product: Product
    stock: int | None
    stock_given: bool


def parse_edit(p: Mapping[str, Any], product: Product) -> Edit:
    """The product with the payload's changes; every field checked."""
    fixed = [k for k in FIXED if k in p and p[k] != getattr(product, k)]
    if fixed:
        raise Invalid(f"{', '.join(fixed)} cannot change; make a new product")
    if not any(k in p for k in EDITABLE):
        raise Invalid(f"nothing to change: give one of {', '.join(EDITABLE)}")
    changes: dict[str, Any] = {}
    if "title" in p:
        changes["title"] = validate.text(p, "title", max_len=200)
    if "description" in p:
        changes["description"] = validate.opt_text(p, "description", max_len=2000)
    if "price" in p:
        changes["price"] = validate.integer(p, "price", lo=1, hi=MAX_PRICE)
    if "currency" in p:
        changes["currency"] = parse_currency(p)
    if "tags" in p:
        changes["tags"] = parse_tags(p)
    if "image_url" in p:
        changes["image_url"] = parse_image_url(p)
    stock = validate.opt_integer(p, "stock", lo=0, hi=MAX_STOCK)
    if "stock" in p and (stock is None) != (product.stock is None):
        raise Conflict("a product keeps unlimited or tracked stock; make a new product to switch")
    return Edit(dataclasses.replace(product, **changes), stock, "stock" in p)


def stock_delta(target: int, inv: Inventory, pool_left: int) -> int:
    """Units to add to the pool (negative: take) so `target` units are given
    in all; `Conflict` when the rules above forbid it."""
    floor = inv.held + inv.sold
    if target < floor:
        raise Conflict(f"stock cannot go below the {floor} units held or sold")
    delta = target - inv.given
    if -delta > pool_left:
        least = inv.given - pool_left
        raise Conflict(
            f"only the {pool_left} units no room holds can go now (stock {least} at least); "
            "rooms give theirs back when they stop showing the product"
        )
    return delta


class ProductEditor:
    """Applies an edit: the product's hash (one script, only if the product
    is still as it was read: a concurrent edit is read again and the change
    applied to it), then its shares' price."""

    ATTEMPTS = 5

    def __init__(self, redis: aioredis.Redis, catalog: Catalog) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._catalog = catalog
        self._scripts = Scripts(redis)

    async def apply(self, product_id: str, change: Callable[[Product], Edit]) -> Product:
        """`change` (pure: it may run again) turns the stored product into the
        edit; `Conflict` if the product kept changing under it."""
        for _ in range(self.ATTEMPTS):
            raw = await self._redis.hget(keys.product(product_id), "data")
            if raw is None:
                raise NotFound(f"no product {product_id}")
            edit = change(product_from_blob(raw))
            if await self._write(edit, raw):
                await self._reprice(edit.product)
                found = await self._catalog.product(product_id)
                return found if found is not None else edit.product
        raise Conflict("the product kept changing while you edited it; try again")

    async def _write(self, edit: Edit, before: bytes) -> bool:
        product = edit.product
        delta, pool_given = 0, -1
        if edit.stock_given and edit.stock is not None:
            _, inv = await self._catalog.get(product.id)
            pool = await self._redis.hmget(keys.product(product.id), "given", "left")
            pool_given, pool_left = int(pool[0] or 0), int(pool[1] or 0)
            if inv is not None:
                delta = stock_delta(edit.stock, inv, pool_left)
        stored = dataclasses.replace(product, stock=edit.stock) if edit.stock_given else product
        args: list[Any] = [product_blob(stored), product.price, product.currency]
        args += [delta, pool_given, before]
        done = await self._scripts.run("commerce/product_update", [keys.product(product.id)], args)
        return bool(done)

    async def _reprice(self, product: Product) -> None:
        for room in await self._catalog.rooms_showing(product.id):
            share_args = [product.price, product.currency]
            await self._scripts.run(
                "commerce/share_price", [keys.share(room, product.id)], share_args
            )
