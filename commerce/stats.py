"""The shop's side of the event numbers: orders paid, failed and refunded,
revenue per currency, orders paid per minute, paying buyers, and each drop's
stock, sales and time to sell out. The order and drop scripts count them
where each transition is decided (commerce/lua/order_settle.lua,
drop_state.lua); this module reads them. Never computed by scanning orders.
Must not import aiohttp, socketio or stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commerce import keys

DROP_FIELDS = ("product_id", "given", "sold", "held", "left", "starts_at", "sold_out_at")


@dataclass(frozen=True, slots=True)
class OrderNumbers:
    paid: int
    failed: int
    refunded: int
    refunded_paid: int  # refunds of orders that had been paid
    revenue: dict[str, int]  # currency -> minor units taken, refunds of paid orders deducted
    paid_per_minute: dict[int, int]  # minute start -> orders paid
    buyers: int  # distinct identities that paid

    @property
    def refund_rate(self) -> float:
        return self.refunded_paid / self.paid if self.paid else 0.0


@dataclass(frozen=True, slots=True)
class DropNumbers:
    id: str
    product_id: str
    stock: int
    sold: int
    held: int
    remaining: int
    starts_at: float
    sold_out_at: float | None

    @property
    def sell_through(self) -> float:
        return self.sold / self.stock if self.stock else 0.0

    @property
    def sold_out_after_s(self) -> float | None:
        if self.sold_out_at is None:
            return None
        return round(max(0.0, self.sold_out_at - self.starts_at), 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "stock": self.stock,
            "sold": self.sold,
            "held": self.held,
            "remaining": self.remaining,
            "sell_through": round(self.sell_through, 4),
            "starts_at": self.starts_at,
            "sold_out_after_s": self.sold_out_after_s,
        }


def _text(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def net_revenue(fields: dict[str, str]) -> dict[str, int]:
    taken = {k[8:]: int(v) for k, v in fields.items() if k.startswith("revenue:")}
    for k, v in fields.items():
        if k.startswith("refunds:"):
            taken[k[8:]] = taken.get(k[8:], 0) - int(v)
    return dict(sorted(taken.items()))


async def order_numbers(redis: Any, room: str) -> OrderNumbers:
    fields = _text(await redis.hgetall(keys.stats_orders(room)))
    per_minute = _text(await redis.hgetall(keys.stats_paid(room)))
    return OrderNumbers(
        paid=int(fields.get("paid", 0)),
        failed=int(fields.get("failed", 0)),
        refunded=int(fields.get("refunded", 0)),
        refunded_paid=int(fields.get("refunded_paid", 0)),
        revenue=net_revenue(fields),
        paid_per_minute={int(m): int(n) for m, n in per_minute.items()},
        buyers=int(await redis.pfcount(keys.stats_buyers(room))),
    )


async def drop_numbers(redis: Any, room: str) -> list[DropNumbers]:
    """Every drop of the room, by starts_at."""
    found = []
    for raw_id in await redis.zrange(keys.drops(room), 0, -1):
        drop_id = raw_id.decode()
        values = await redis.hmget(keys.drop(room, drop_id), list(DROP_FIELDS))
        if values[0] is None:
            continue
        texts = [v.decode() if v is not None else None for v in values]
        f = dict(zip(DROP_FIELDS, texts, strict=True))
        found.append(
            DropNumbers(
                id=drop_id,
                product_id=f["product_id"] or "",
                stock=int(f["given"] or 0),
                sold=int(f["sold"] or 0),
                held=int(f["held"] or 0),
                remaining=int(f["left"] or 0),
                starts_at=float(f["starts_at"] or 0),
                sold_out_at=float(f["sold_out_at"]) if f["sold_out_at"] else None,
            )
        )
    return found


async def room_order_ids(
    redis: Any, room: str, limit: int, before: tuple[float, str] | None = None
) -> list[tuple[str, float]]:
    """The room's order ids newest first (the index kept at order time),
    strictly before the cursor (created_at, order id) when given."""
    top = "+inf" if before is None else repr(before[0])
    found: list[tuple[str, float]] = []
    offset = 0
    while len(found) < limit:
        rows = await redis.zrevrangebyscore(
            keys.orders_all(room), top, "-inf", start=offset, num=limit + 1, withscores=True
        )
        if not rows:
            break
        for raw, score in rows:
            oid = raw.decode()
            if before is not None and score == before[0] and oid >= before[1]:
                continue
            found.append((oid, score))
        offset += len(rows)
    return found[:limit]
