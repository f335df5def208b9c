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
        }
        if self.receipt is not None:
            d["receipt"] = self.receipt
        if self.reason:
            d["reason"] = self.reason
        if self.status in (OrderStatus.REFUND_DUE, OrderStatus.REFUNDED):
            d["refund"] = self.refund_ref or "pending"
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
    }


def _opt(raw: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = raw.get(name, b"").decode()
    return value or None


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
    )
