"""Timed drops: a product sold in a window with its own stock and a per-buyer
limit. Owns the drop value, the schedule request's validation and the state
derivation (`scheduled`, `live`, `sold_out`, `ended`). Pure: no Redis, no
clock (time comes in as `now`). Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from commerce.catalog import MAX_STOCK
from kernel import validate
from kernel.errors import Invalid

MAX_WINDOW_S = 30 * 24 * 3600
MAX_AHEAD_S = 365 * 24 * 3600
MAX_LIMIT = 1000


class DropState(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    SOLD_OUT = "sold_out"
    ENDED = "ended"


def derive_state(starts_at: float, ends_at: float, remaining: int, now: float) -> DropState:
    """The drop's state; commerce/lua/drop_state.lua derives it the same way."""
    if now >= ends_at:
        return DropState.ENDED
    if now < starts_at:
        return DropState.SCHEDULED
    if remaining <= 0:
        return DropState.SOLD_OUT
    return DropState.LIVE


@dataclass(frozen=True, slots=True)
class DropRequest:
    """A moderator's `drop:schedule`, validated."""

    product_id: str
    starts_at: float
    ends_at: float
    stock: int
    per_buyer_limit: int | None
    requires_account: bool = False


def parse_schedule(p: Mapping[str, Any], now: float) -> DropRequest:
    starts = validate.number(p, "starts_at", lo=now - 60, hi=now + MAX_AHEAD_S)
    ends = validate.number(p, "ends_at", lo=starts, hi=starts + MAX_WINDOW_S)
    if ends <= starts or ends <= now:
        raise Invalid("ends_at must be after starts_at and in the future")
    return DropRequest(
        product_id=validate.ident(p, "product_id"),
        starts_at=starts,
        ends_at=ends,
        stock=validate.integer(p, "stock", lo=1, hi=MAX_STOCK),
        per_buyer_limit=validate.opt_integer(p, "per_buyer_limit", lo=1, hi=MAX_LIMIT),
        requires_account=validate.opt_boolean(p, "requires_account", default=False),
    )


def new_drop_id() -> str:
    return "drop_" + secrets.token_hex(6)


@dataclass(frozen=True, slots=True)
class Drop:
    id: str
    room: str
    product_id: str
    price: int
    currency: str
    starts_at: float
    ends_at: float
    stock: int  # units given, restocks included
    remaining: int
    held: int
    sold: int
    per_buyer_limit: int | None
    requires_account: bool = False  # only signed-in buyers may reserve

    def state(self, now: float) -> DropState:
        return derive_state(self.starts_at, self.ends_at, self.remaining, now)

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "state": str(self.state(now)),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "stock": self.stock,
            "remaining": self.remaining,
            "held": self.held,  # in carts or awaiting payment
            "sold": self.sold,  # remaining + held + sold == stock
            "per_buyer_limit": self.per_buyer_limit,
            "requires_account": self.requires_account,
            "price": self.price,
            "currency": self.currency,
            "server_time": now,
        }


def drop_from_hash(room: str, drop_id: str, raw: Mapping[bytes, bytes]) -> Drop:
    limit = int(raw.get(b"limit", b"0"))
    return Drop(
        id=drop_id,
        room=room,
        product_id=raw[b"product_id"].decode(),
        price=int(raw[b"price"]),
        currency=raw[b"currency"].decode(),
        starts_at=float(raw[b"starts_at"]),
        ends_at=float(raw[b"ends_at"]),
        stock=int(raw[b"given"]),
        remaining=int(raw[b"left"]),
        held=int(raw[b"held"]),
        sold=int(raw[b"sold"]),
        per_buyer_limit=limit or None,
        requires_account=raw.get(b"requires_account") == b"1",
    )
