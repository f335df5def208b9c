"""The room's order list for its staff (`GET /api/v1/rooms/{room}/orders`):
newest first from the room's order index (commerce.stats.room_order_ids,
never a scan), filtered by status, paginated by a cursor, as JSON or CSV.
The buyer's email and full address only for the room's owner (or the admin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from commerce.orders import Order
from commerce.stats import room_order_ids
from kernel.errors import Invalid
from server.appkeys import ACCOUNTS, REDIS, ROOMS
from server.numbers.cells import to_csv
from server.shop.resources import SHOP

STATUSES = ("paid", "pending", "failed", "refunded")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
CSV_LIMIT = 10_000  # one export holds at most this many orders
CSV_COLUMNS = (
    "order_id",
    "created_at",
    "status",
    "buyer_identity",
    "buyer_name",
    "buyer_email",
    "product_id",
    "drop_id",
    "title",
    "qty",
    "unit_price",
    "amount",
    "total",
    "currency",
    "payment_ref",
)


@dataclass(frozen=True, slots=True)
class Query:
    status: str | None
    limit: int
    before: tuple[float, str] | None


def parse_query(q: Any, *, limit_cap: int = MAX_LIMIT) -> Query:
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise Invalid("status must be one of " + ", ".join(STATUSES))
    raw_limit = q.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= limit_cap:
        raise Invalid(f"limit must be a whole number from 1 to {limit_cap}")
    return Query(status, int(raw_limit), parse_cursor(q.get("before")))


def cursor(order: Order) -> str:
    return f"{order.created_at!r}|{order.id}"


def parse_cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    at, sep, order_id = raw.partition("|")
    try:
        return (float(at), order_id) if sep and order_id else _bad_cursor()
    except ValueError:
        return _bad_cursor()


def _bad_cursor() -> tuple[float, str]:
    raise Invalid("before must be the `next` cursor of a page")


async def page(app: web.Application, room: str, query: Query) -> tuple[list[Order], str | None]:
    """Up to `limit` orders matching the status, and the next page's cursor."""
    store, redis = app[SHOP].orders, app[REDIS]
    found: list[Order] = []
    before = query.before
    while len(found) < query.limit:
        batch = await room_order_ids(redis, room, max(query.limit, DEFAULT_LIMIT), before)
        for order_id, created_at in batch:
            before = (created_at, order_id)
            order = await store.find(room, order_id)
            if order is None or (query.status and order.status.wire != query.status):
                continue
            found.append(order)
            if len(found) == query.limit:
                break
        if not batch:
            return found, None
    return found, cursor(found[-1])


async def buyer(app: web.Application, order: Order, with_email: bool) -> dict[str, Any]:
    person = await app[ROOMS].get_participant(order.room, order.identity)
    name = person.name if person is not None else None
    email = order.email
    if order.identity.startswith("acct_") and ACCOUNTS in app:
        account = await app[ACCOUNTS].get(order.identity)
        if account is not None:
            name = name or account.name
            email = email or account.email
    found: dict[str, Any] = {"identity": order.identity, "name": name or order.identity}
    if with_email:
        found["email"] = email
    return found


async def order_row(app: web.Application, order: Order, with_email: bool) -> dict[str, Any]:
    d = order.as_dict() if with_email else order.feed_dict()
    return d | {"buyer": await buyer(app, order, with_email)}


def orders_csv(rows: list[dict[str, Any]], with_email: bool) -> str:
    columns = [c for c in CSV_COLUMNS if with_email or c != "buyer_email"]
    lines = []
    for o in rows:
        b = o["buyer"]
        for line in o["lines"]:
            values = {
                "order_id": o["id"],
                "created_at": o["created_at"],
                "status": o["status"],
                "buyer_identity": b["identity"],
                "buyer_name": b["name"],
                "buyer_email": b.get("email"),
                "payment_ref": o["payment_ref"],
                "total": o["total"],
                "currency": o["currency"],
                **{k: line[k] for k in ("product_id", "drop_id", "title", "qty")},
                **{k: line[k] for k in ("unit_price", "amount")},
            }
            lines.append([values[c] for c in columns])
    return to_csv(columns, lines)
