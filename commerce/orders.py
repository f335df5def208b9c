"""Orders: a frozen cart waiting for, or settled by, a payment.

Owns the order value, its status and its wire shape, and the receipt given
when it is paid. Pure: no Redis, no clock. Must not import aiohttp,
socketio or stripe.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from commerce.buyer_details import Shipping, shipping_from_json


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    REFUND_DUE = "refund_due"  # paid after its hold was lost; the refund is under way
    REFUNDED = "refunded"

    @property
    def wire(self) -> str:
        # The protocol knows pending/paid/failed/refunded: a refund under way
        # is a failed order for the buyer (see docs/shop.md).
        return "failed" if self is OrderStatus.REFUND_DUE else str(self)


class Reason(StrEnum):
    DECLINED = "payment_failed"
    HOLD_EXPIRED = "hold_expired"
    CANCELED = "payment_canceled"
    PAID_AFTER_HOLD_LOST = "paid_after_hold_lost"
    AMOUNT_MISMATCH = "amount_mismatch"
    REPLACED = "replaced_intent"  # money taken on an intent its order no longer uses
    CANCELED_BY_BUYER = "canceled_by_buyer"


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    product_id: str
    drop_id: str | None
    title: str
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
            "title": self.title,
            "qty": self.qty,
            "unit_price": self.unit_price,
            "amount": self.amount,
        }


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    room: str
    identity: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: int
    currency: str
    created_at: float
    hold_until: float
    payment_ref: str | None = None
    client_secret: str | None = None
    reason: str | None = None
    receipt: dict[str, Any] | None = None
    refund_ref: str | None = None
    # Added in wave 2 (absent from wave 1 hashes, so all optional):
    payment_refs: tuple[str, ...] = ()  # every intent the order ever had, oldest first
    declined: tuple[str, ...] = ()  # intents whose card was declined
    payment_error: str | None = None  # the last decline, said to the buyer
    intent_status: str | None = None  # the current intent's status as last seen
    max_attempts: int = 3
    # Added by issue 11 (buyers): the buyer's details, kept at freeze.
    email: str | None = None
    shipping: Shipping | None = None
    claimed_from: str | None = None  # the guest identity whose order an account claimed

    @property
    def refs(self) -> frozenset[str]:
        """Every intent id this order ever had (a wave 1 order: its payment_ref)."""
        return frozenset(self.payment_refs) | ({self.payment_ref} if self.payment_ref else set())

    @property
    def declines(self) -> int:
        return len(self.declined)

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.declines)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "status": self.status.wire,
            "lines": [line.as_dict() for line in self.lines],
            "total": self.total,
            "currency": self.currency,
            "payment_ref": self.payment_ref,
            "created_at": self.created_at,
            "hold_until": self.hold_until,
            "email": self.email,
            "shipping": self.shipping.as_dict() if self.shipping else None,
        }
        if self.receipt is not None:
            d["receipt"] = self.receipt
        if self.reason:
            d["reason"] = self.reason
        if self.status is OrderStatus.PENDING:
            d["attempts_left"] = self.attempts_left
            d["payment_error"] = self.payment_error
        if self.status in (OrderStatus.REFUND_DUE, OrderStatus.REFUNDED):
            d["refund"] = self.refund_ref or "pending"
        return d

    def feed_dict(self) -> dict[str, Any]:
        """The order as the room's live staff feed shows it: who bought (the
        identity) and where it ships (name and country), never the email or
        the full address (those are in the order list)."""
        d = self.as_dict()
        d.pop("email")
        d["shipping"] = self.shipping.for_staff_feed() if self.shipping else None
        if self.receipt is not None:
            receipt = {k: v for k, v in self.receipt.items() if k != "email"}
            d["receipt"] = receipt | {"shipping": d["shipping"]}
        d["buyer"] = self.identity
        return d


def new_order_id() -> str:
    return "ord_" + secrets.token_hex(8)


def lines_json(lines: tuple[OrderLine, ...]) -> str:
    return json.dumps([line.as_dict() for line in lines], separators=(",", ":"))


def build_receipt(order: Order, payment_ref: str, now: float) -> dict[str, Any]:
    """The short receipt a paid order carries."""
    return {
        "order_id": order.id,
        "lines": [
            {"title": ln.title, "qty": ln.qty, "unit_price": ln.unit_price, "amount": ln.amount}
            for ln in order.lines
        ],
        "total": order.total,
        "currency": order.currency,
        "payment_ref": payment_ref,
        "paid_at": now,
        "email": order.email,
        "shipping": order.shipping.as_dict() if order.shipping else None,
    }


def _opt(raw: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = raw.get(name, b"").decode()
    return value or None


def _words(raw: Mapping[bytes, bytes], name: bytes) -> tuple[str, ...]:
    return tuple(raw.get(name, b"").decode().split())


def _line(d: Mapping[str, Any]) -> OrderLine:
    return OrderLine(
        d["line_id"], d["product_id"], d["drop_id"], d["title"], d["qty"], d["unit_price"]
    )


def order_from_hash(raw: Mapping[bytes, bytes]) -> Order:
    lines = tuple(_line(d) for d in json.loads(raw[b"lines"]))
    receipt = _opt(raw, b"receipt")
    return Order(
        id=raw[b"id"].decode(),
        room=raw[b"room"].decode(),
        identity=raw[b"identity"].decode(),
        status=OrderStatus(raw[b"status"].decode()),
        lines=lines,
        total=int(raw[b"total"]),
        currency=raw[b"currency"].decode(),
        created_at=float(raw[b"created_at"]),
        hold_until=float(raw[b"hold_until"]),
        payment_ref=_opt(raw, b"payment_ref"),
        client_secret=_opt(raw, b"client_secret"),
        reason=_opt(raw, b"reason"),
        receipt=json.loads(receipt) if receipt else None,
        refund_ref=_opt(raw, b"refund_ref"),
        payment_refs=_words(raw, b"payment_refs"),
        declined=_words(raw, b"declined"),
        payment_error=_opt(raw, b"payment_error"),
        intent_status=_opt(raw, b"pi_status"),
        max_attempts=int(raw.get(b"max_attempts", b"3")),
        email=_opt(raw, b"email"),
        shipping=shipping_from_json(raw.get(b"shipping", b"").decode()),
        claimed_from=_opt(raw, b"claimed_from"),
    )
