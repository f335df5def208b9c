"""The report of a room's event numbers, built from the counters the domain
scripts keep (rooms.stats, commerce.stats): the JSON of docs/protocol.md
("Event numbers"), its flat CSV, and the live part `stats:updated` carries.
Reads counters only, never orders or logs; holds no buyer data.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from commerce.downloads import percentiles
from commerce.stats import DropNumbers, OrderNumbers, drop_numbers, order_numbers
from rooms.stats import ListenerNumbers, listener_numbers
from server.appkeys import DOWNLOADS, REDIS, ROOMS
from server.numbers.cells import to_csv


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def per_minute(listeners: ListenerNumbers, orders: OrderNumbers) -> list[dict[str, Any]]:
    """Each minute with listeners or payments: the most listeners present (a
    minute with no note carries the last one over), the orders paid, their
    ratio."""
    minutes = sorted(set(listeners.present) | set(orders.paid_per_minute))
    rows: list[dict[str, Any]] = []
    last = 0
    for t in minutes:
        last = listeners.present.get(t, last)
        buyers = orders.paid_per_minute.get(t, 0)
        rows.append({"t": t, "listeners": last, "buyers": buyers, "rate": ratio(buyers, last)})
    return rows


def build(
    room: str,
    now: float,
    listeners: ListenerNumbers,
    orders: OrderNumbers,
    drops: list[DropNumbers],
    delivery: dict[str, float | None],
) -> dict[str, Any]:
    return {
        "room": room,
        "at": now,
        "listeners": {"now": listeners.now, "peak": listeners.peak, "unique": listeners.unique},
        "joins_per_minute": [{"t": t, "n": n} for t, n in sorted(listeners.joins.items())],
        "orders": {"paid": orders.paid, "failed": orders.failed, "refunded": orders.refunded},
        "revenue": orders.revenue,
        "conversion": {
            "overall": ratio(orders.buyers, listeners.unique),
            "per_minute": per_minute(listeners, orders),
        },
        "drops": [d.as_dict() for d in drops],
        "delivery_ms": delivery,
        "refund_rate": round(orders.refund_rate, 4),
    }


async def report(app: web.Application, room: str, now: float) -> dict[str, Any]:
    redis = app[REDIS]
    raw_delivery = await app[DOWNLOADS].delivery_ms(room) if DOWNLOADS in app else None
    return build(
        room,
        now,
        await listener_numbers(app[ROOMS], room),
        await order_numbers(redis, room),
        await drop_numbers(redis, room),
        raw_delivery or percentiles([]),
    )


def csv_rows(rep: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The report flattened: (section, key, value)."""
    rows: list[tuple[str, str, Any]] = [("room", "id", rep["room"]), ("room", "at", rep["at"])]
    rows += [("listeners", k, v) for k, v in rep["listeners"].items()]
    rows += [("orders", k, v) for k, v in rep["orders"].items()]
    rows += [("revenue", cur, v) for cur, v in rep["revenue"].items()]
    rows += [("conversion", "overall", rep["conversion"]["overall"])]
    for m in rep["conversion"]["per_minute"]:
        rows += [("conversion_minute", str(m["t"]), m["rate"])]
        rows += [("listeners_minute", str(m["t"]), m["listeners"])]
        rows += [("buyers_minute", str(m["t"]), m["buyers"])]
    rows += [("joins_minute", str(j["t"]), j["n"]) for j in rep["joins_per_minute"]]
    for d in rep["drops"]:
        rows += [(f"drop:{d['id']}", k, v) for k, v in d.items() if k != "id"]
    rows += [("delivery_ms", k, v) for k, v in rep["delivery_ms"].items()]
    rows += [("refund_rate", "all", rep["refund_rate"])]
    return rows


def report_csv(rep: dict[str, Any]) -> str:
    return to_csv(("section", "key", "value"), csv_rows(rep))
