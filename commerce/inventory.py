"""Atomic stock reservation: what a cart line reserves against and the keys
of the scripts that move units between a stock's `left` and `held` for a
buyer's cart, enforce the per-buyer limit and the drop's window, and never
let `left` go below zero.

One script per change, in commerce/lua/: reserve (cart:add), release_line
(cart:remove), expire_cart (the sweeper); the unit moves are the prelude
commerce/lua/stock.lua. Every script touches only keys of the
room's hash tag (one Cluster slot): a drop's stock, or the room's share of a
plain product (commerce.shares fills it from the product's pool). Frameworks
(aiohttp, socketio) and the stripe SDK stay out of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commerce import keys


@dataclass(frozen=True, slots=True)
class Target:
    """What a cart line reserves against: a drop of the room or a product."""

    room: str
    product_id: str
    drop_id: str | None

    @property
    def line_id(self) -> str:
        return f"d.{self.drop_id}" if self.drop_id else f"p.{self.product_id}"

    @property
    def stock_key(self) -> str:
        if self.drop_id:
            return keys.drop(self.room, self.drop_id)
        return keys.share(self.room, self.product_id)

    @property
    def buyers_key(self) -> str:
        # Plain products have no per-buyer limit: the key stays empty, but it is
        # a real key of the room's slot (a '' key would hash to slot 0).
        if self.drop_id:
            return keys.drop_buyers(self.room, self.drop_id)
        return keys.share_buyers(self.room, self.product_id)

    @classmethod
    def from_line_id(cls, room: str, line_id: str) -> Target | None:
        kind, _, ident = line_id.partition(".")
        if kind == "d" and ident:
            return cls(room, "", ident)
        if kind == "p" and ident:
            return cls(room, ident, None)
        return None


@dataclass(frozen=True, slots=True)
class StockMove:
    """What a script answered: the stock left and a drop state it announced."""

    line_id: str
    left: int  # -1 for untracked stock
    announced: str


def line_keys(room: str, identity: str, target: Target) -> list[str]:
    return [
        keys.cart(room, identity),
        target.stock_key,
        target.buyers_key,
        keys.carts_expiry(room),
        keys.log(room),
        keys.log_head(room),
    ]


def expire_args(room: str, line_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """The per-line KEYS and ARGV tails of the expire script."""
    k: list[str] = []
    a: list[str] = []
    for line_id in line_ids:
        target = Target.from_line_id(room, line_id)
        if target is None:
            continue
        k += [target.stock_key, target.buyers_key]
        a += [line_id, target.drop_id or ""]
    return k, a
