"""Carts: one per identity and room, held in Redis for a time to live, every
line backed by a stock reservation (commerce.inventory).

Owns the cart value and its wire shape, the `cart:add` request's validation,
and the cart operations (add, remove, get, sweep expired), each returning
the events to send. Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from commerce import keys
from commerce.buyers import is_account
from commerce.catalog import Catalog
from commerce.drop_store import DropStore, drop_event
from commerce.events import CART_UPDATED
from commerce.inventory import StockMove, Target, expire_args, line_keys
from commerce.shares import Shares
from commerce.sold_out import SoldOutDrops
from kernel import validate
from kernel.errors import Invalid, NotFound, SoldOut
from kernel.events import Event, to_identity
from kernel.lua import Scripts

logger = logging.getLogger(__name__)

MAX_ADD_QTY = 20
MAX_LINE_QTY = 99
SWEEP_RETRIES = 3


@dataclass(frozen=True, slots=True)
class CartLine:
    line_id: str
    product_id: str
    drop_id: str | None
    qty: int
    unit_price: int

    @property
    def amount(self) -> int:
        return self.qty * self.unit_price

    def as_dict(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "product_id": self.product_id,
            "drop_id": self.drop_id,
            "qty": self.qty,
            "unit_price": self.unit_price,
        }


@dataclass(frozen=True, slots=True)
class Cart:
    lines: tuple[CartLine, ...] = ()
    currency: str | None = None
    expires_at: float | None = None
    version: str = ""
    cart_id: str = ""

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.as_dict() for line in self.lines],
            "total": self.total,
            "currency": self.currency,
            "expires_at": self.expires_at,
        }


EMPTY = Cart()


def cart_from_fields(flat: Sequence[bytes] | Mapping[bytes, bytes]) -> Cart:
    """A cart from its hash (a mapping, or the flat list a script returns)."""
    raw = flat if isinstance(flat, Mapping) else dict(zip(flat[::2], flat[1::2], strict=True))
    if not raw:
        return EMPTY
    lines = []
    for name, value in sorted(raw.items()):
        if name.startswith(b"line:"):
            d = json.loads(value)
            lines.append(
                CartLine(d["line_id"], d["product_id"], d["drop_id"], d["qty"], d["unit_price"])
            )
    return Cart(
        lines=tuple(lines),
        currency=raw.get(b"currency", b"").decode() or None,
        expires_at=float(raw[b"expires_at"]) if b"expires_at" in raw else None,
        version=raw.get(b"v", b"").decode(),
        cart_id=raw.get(b"cart_id", b"").decode(),
    )


@dataclass(frozen=True, slots=True)
class AddRequest:
    product_id: str | None
    drop_id: str | None
    qty: int


def parse_add(p: Mapping[str, Any]) -> AddRequest:
    has_product, has_drop = p.get("product_id") is not None, p.get("drop_id") is not None
    if has_product == has_drop:
        raise Invalid("give exactly one of product_id or drop_id")
    qty = validate.integer(p, "qty", lo=1, hi=MAX_ADD_QTY) if "qty" in p else 1
    if has_drop:
        return AddRequest(None, validate.ident(p, "drop_id"), qty)
    return AddRequest(validate.ident(p, "product_id"), None, qty)


def parse_line_id(p: Mapping[str, Any]) -> str:
    value = p.get("line_id")
    if not isinstance(value, str) or len(value) > 80:
        raise Invalid("line_id must be a line id of the cart")
    return value


@dataclass(frozen=True, slots=True)
class CartChange:
    """A cart after a change, the stock moves it made and the events to send."""

    cart: Cart
    moves: tuple[StockMove, ...] = ()
    events: list[Event] = field(default_factory=list)


class Carts:
    def __init__(
        self,
        redis: aioredis.Redis,
        drops: DropStore,
        ttl_s: float,
        sold_out: SoldOutDrops | None = None,
    ) -> None:
        self._redis: Any = redis  # redis-py types its async answers loosely
        self._drops = drops
        self.sold_out = sold_out or SoldOutDrops(redis)
        self._ttl_s = ttl_s
        self._scripts = Scripts(redis)
        self._shares = Shares(redis, Catalog(redis))
        self._known_rooms: set[str] = set()

    async def get(self, room: str, identity: str) -> Cart:
        raw = await self._redis.hgetall(keys.cart(room, identity))
        return cart_from_fields(raw)

    async def add(self, room: str, identity: str, req: AddRequest, now: float) -> CartChange:
        target = Target(room, req.product_id or "", req.drop_id)
        signed_in = is_account(identity)
        if target.drop_id is not None:  # known sold out for good: no round trip
            refusal = self.sold_out.refusal(room, target.drop_id, identity, req.qty, now, signed_in)
            if refusal is not None:
                raise refusal
        await self._remember(room)
        expires = now + self._ttl_s
        args: list[Any] = [identity, target.line_id, req.qty, repr(now), repr(expires)]
        args += [MAX_LINE_QTY, secrets.token_hex(8)]
        args += [req.drop_id or "", "1" if signed_in else "0"]
        script_keys = [*line_keys(room, identity, target), keys.slots(room)]
        try:
            res = await self._scripts.run("commerce/reserve", script_keys, args)
        except (NotFound, SoldOut) as exc:
            # The room's share of the product lacks units (or was never made).
            if target.drop_id is not None:
                if isinstance(exc, SoldOut):  # for good? (read once, in the background)
                    self.sold_out.suspect(room, target.drop_id, now)
                raise
            if not await self._shares.refill(room, target.product_id, req.qty, now):
                raise
            res = await self._scripts.run("commerce/reserve", script_keys, args)
        return await self._change(room, target, res, now)

    async def _remember(self, room: str) -> None:
        # The sweeper walks {shop}:rooms; add each room once per process. The
        # room is marked first, so a rush's concurrent first calls send one SADD.
        if room in self._known_rooms:
            return
        self._known_rooms.add(room)
        try:
            await self._redis.sadd(keys.SHOP_ROOMS, room)
        except BaseException:
            self._known_rooms.discard(room)  # the next call tries again
            raise

    async def remove(self, room: str, identity: str, line_id: str, now: float) -> CartChange:
        target = Target.from_line_id(room, line_id)
        if target is None:
            raise NotFound("no such line in the cart")
        args = [identity, line_id, repr(now), repr(now + self._ttl_s), target.drop_id or ""]
        script_keys = line_keys(room, identity, target)
        res = await self._scripts.run("commerce/release_line", script_keys, args)
        return await self._change(room, target, res, now)

    async def _change(self, room: str, target: Target, res: list[Any], now: float) -> CartChange:
        left = int(res[1])
        if target.drop_id is None and left >= 0:  # the room may still pull from the pool
            left += await self._shares.left_in_pool(target.product_id)
        move = StockMove(target.line_id, left, res[2].decode())
        events = []
        if move.announced and target.drop_id:
            events.append(drop_event(await self._drops.get(room, target.drop_id), now))
        return CartChange(cart_from_fields(res[3:]), (move,), events)

    async def sweep(self, room: str, now: float) -> list[CartChange]:
        """Expire the room's carts whose time is up; return their stock."""
        due = await self._redis.zrangebyscore(keys.carts_expiry(room), "-inf", repr(now))
        changes = []
        for raw_identity in due:
            change = await self._expire(room, raw_identity.decode(), now)
            if change is not None:
                changes.append(change)
        return changes

    async def _expire(self, room: str, identity: str, now: float) -> CartChange | None:
        for _ in range(SWEEP_RETRIES):
            cart = await self.get(room, identity)
            k, a = expire_args(room, [line.line_id for line in cart.lines])
            base_keys = [keys.cart(room, identity), keys.carts_expiry(room)]
            base_keys += [keys.log(room), keys.log_head(room)]
            args = [identity, repr(now), cart.version, *a]
            res = await self._scripts.run("commerce/expire_cart", base_keys + k, args)
            if res[0] == b"stale":
                continue
            if res[0] != b"ok":
                return None
            logger.info("room %s: cart of %s expired (%d lines)", room, identity, len(cart.lines))
            return await self._expired(room, identity, res[1:], now)
        logger.warning("room %s: cart of %s kept changing; retry next sweep", room, identity)
        return None

    async def _expired(self, room: str, identity: str, res: list[Any], now: float) -> CartChange:
        moves = tuple(
            StockMove(res[i].decode(), int(res[i + 1]), res[i + 2].decode())
            for i in range(0, len(res), 3)
        )
        payload = {"cart": EMPTY.as_dict(), "reason": "expired"}
        events = [to_identity(room, identity, CART_UPDATED, payload)]
        for move in moves:
            target = Target.from_line_id(room, move.line_id)
            if move.announced and target is not None and target.drop_id:
                events.append(drop_event(await self._drops.get(room, target.drop_id), now))
        return CartChange(EMPTY, moves, events)
