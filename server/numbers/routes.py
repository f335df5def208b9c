"""HTTP routes of the event numbers: the report (JSON, CSV, a chart image),
the room's order list (JSON, CSV) and a drop's hash-chained log. Who may ask
is decided by server.owners.require_room_staff; the buyer's email goes to the
room's owner (or the admin) only."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from accounts.ownership import Actor
from kernel.errors import NotFound
from kernel.eventlog import Entry, verify
from server.appkeys import ROOMS, SCHEDULER
from server.numbers import chart, orders
from server.numbers.report import report, report_csv
from server.owners import require_room_staff
from server.roles import Role
from server.shop.resources import SHOP

routes = web.RouteTableDef()
CSV_TYPE = "text/csv"


def _csv(body: str, filename: str) -> web.Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return web.Response(text=body, content_type=CSV_TYPE, charset="utf-8", headers=headers)


@routes.get("/api/v1/rooms/{room}/report")
async def get_report(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    await require_room_staff(request, room_id)
    rep = await report(request.app, room_id, request.app[SCHEDULER].clock())
    if request.query.get("format") == "csv":
        return _csv(report_csv(rep), f"{room_id}-report.csv")
    return web.json_response(rep)


@routes.get("/api/v1/rooms/{room}/report.png")
async def get_report_chart(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    _, room = await require_room_staff(request, room_id)
    rep = await report(request.app, room_id, request.app[SCHEDULER].clock())
    png = await chart.render_async(room.title, rep)
    return web.Response(body=png, content_type="image/png")


@routes.get("/api/v1/rooms/{room}/orders")
async def list_orders(request: web.Request) -> web.Response:
    room_id = request.match_info["room"]
    who, _ = await require_room_staff(request, room_id, least=Role.MODERATOR)
    with_email = isinstance(who, Actor)  # the owner or the admin, never a room token
    as_csv = request.query.get("format") == "csv"
    cap = orders.CSV_LIMIT if as_csv else orders.MAX_LIMIT
    query = orders.parse_query(request.query, limit_cap=cap)
    if as_csv and "limit" not in request.query:
        query = orders.Query(query.status, orders.CSV_LIMIT, query.before)
    found, next_cursor = await orders.page(request.app, room_id, query)
    rows = [await orders.order_row(request.app, o, with_email) for o in found]
    if as_csv:
        return _csv(orders.orders_csv(rows, with_email), f"{room_id}-orders.csv")
    return web.json_response({"orders": rows, "next": next_cursor})


def _about_drop(entry: Entry, drop_id: str, order_ids: set[str]) -> bool:
    try:
        data: Any = json.loads(entry.data)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if data.get("drop_id") == drop_id:
        return True
    lines = data.get("lines") if entry.type == "order.created" else None
    if isinstance(lines, list) and any(
        isinstance(ln, dict) and ln.get("drop_id") == drop_id for ln in lines
    ):
        order_ids.add(str(data.get("order_id")))
        return True
    return data.get("order_id") in order_ids


@routes.get("/api/v1/rooms/{room}/drops/{drop}/log")
async def drop_log(request: web.Request) -> web.Response:
    room_id, drop_id = request.match_info["room"], request.match_info["drop"]
    await require_room_staff(request, room_id)
    await request.app[SHOP].drops.get(room_id, drop_id)  # NotFound for another room's drop
    entries = [e async for e in request.app[ROOMS].log_entries(room_id)]
    order_ids: set[str] = set()
    mine = [e for e in entries if _about_drop(e, drop_id, order_ids)]
    if not mine:
        raise NotFound("no log entries for this drop")
    verdict = verify(entries)
    return web.json_response(
        {
            "drop_id": drop_id,
            "entries": [
                {"id": e.id, "type": e.type, "data": json.loads(e.data), "ts": e.ts}
                | {"prev": e.prev, "hash": e.hash}
                for e in mine
            ],
            "verdict": {
                "ok": verdict.ok,
                "checked": verdict.checked,
                "bad_entry": verdict.bad_entry,
                "reason": verdict.reason,
            },
        }
    )
