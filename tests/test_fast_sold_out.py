"""A drop sold out for good (no unit left, none held) answers `sold_out`
without a Redis round trip; a restock (on this process or another) and held
units coming back let buyers reserve again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from commerce import keys
from commerce.inventory import Target, line_keys
from commerce.sold_out import final_from_script
from kernel.errors import DomainError
from kernel.lua import Scripts
from server.appkeys import REDIS, ROOMS
from server.shop.resources import SHOP, STRIPE_EMBED
from tests.harness import Client, Harness, redis_client, start_server, stop_server
from tests.harness import test_settings as make_settings

ROOM = "fastroom"
SHIP: dict[str, Any] = {
    "shipping": {
        "name": "Ada Buyer",
        "line1": "1 Rue de la Paix",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
    }
}


async def _drop(server: Harness, stock: int, limit: int | None = 2) -> tuple[Client, str]:
    await server.create_room(id=ROOM)
    await server.admin_post(
        "/api/v1/products",
        {"id": "tee", "title": "Tee", "price": 2500, "currency": "EUR", "kind": "physical"},
    )
    host = await server.connect(ROOM, "host", "host")
    now = time.time()
    payload: dict[str, Any] = {"product_id": "tee", "starts_at": now, "ends_at": now + 600}
    payload.update({"stock": stock, "per_buyer_limit": limit})
    answer = await host.call("drop:schedule", payload)
    assert answer["ok"], answer
    return host, answer["drop"]["id"]


async def _card(server: Harness) -> str:
    embedded = server.app[STRIPE_EMBED]
    assert embedded is not None
    keys = embedded.keys
    data = {"key": keys.publishable_key, "card[number]": "4242424242424242"}
    data.update({"card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(keys.api_base + "/v1/tokens", data=data) as resp,
    ):
        body = await resp.json()
    return str(body["card"]["id"])


async def _buy_all(server: Harness, drop_id: str, qty: int) -> None:
    """alice buys and pays every unit: none left, none held."""
    alice = await server.connect(ROOM, "alice")
    assert (await alice.call("cart:add", {"drop_id": drop_id, "qty": qty}))["ok"]
    card = await _card(server)
    answer = await alice.call("checkout:start", {**SHIP, "payment_method": card})
    assert answer["ok"] and answer["status"] == "succeeded", answer
    await alice.wait_for("order:updated", lambda d: d["order"]["status"] == "paid", 10)
    drop = await server.app[SHOP].drops.get(ROOM, drop_id)
    assert (drop.remaining, drop.held, drop.sold) == (0, 0, qty)


async def _is_open(server: Harness) -> None:
    async with asyncio.timeout(5):
        while not server.app[SHOP].sold_out.is_open:
            await asyncio.sleep(0.02)


@contextmanager
def _commands_about(server: Harness, word: str) -> Iterator[list[tuple[Any, ...]]]:
    """Every command the server's Redis clients send that names `word`."""
    seen: list[tuple[Any, ...]] = []
    clients = [server.app[REDIS], server.app[ROOMS].redis]
    originals = [c.execute_command for c in clients]

    def wrap(original: Any) -> Any:
        async def execute_command(*args: Any, **kwargs: Any) -> Any:
            if any(word in (a.decode() if isinstance(a, bytes) else str(a)) for a in args):
                seen.append(args)
            return await original(*args, **kwargs)

        return execute_command

    for client, original in zip(clients, originals, strict=True):
        client.execute_command = wrap(original)
    try:
        yield seen
    finally:
        for client in clients:
            del client.execute_command  # the class's own again


async def _sold_out(client: Client, drop_id: str) -> None:
    answer = await client.call("cart:add", {"drop_id": drop_id})
    assert answer["ok"] is False and answer["error"]["code"] == "sold_out", answer


async def test_a_drop_sold_out_for_good_answers_without_redis(server: Harness) -> None:
    await _is_open(server)
    host, drop_id = await _drop(server, stock=2)
    await _buy_all(server, drop_id, 2)
    bob = await server.connect(ROOM, "bob")
    await _sold_out(bob, drop_id)  # the script says it; the drop is read once
    await server.app[SHOP].sold_out.settle()
    assert server.app[SHOP].sold_out.knows(ROOM, drop_id)

    carol = await server.connect(ROOM, "carol")
    alice = await server.connect(ROOM, "alice")
    with _commands_about(server, drop_id) as sent:
        await _sold_out(bob, drop_id)
        await _sold_out(carol, drop_id)
        # alice bought her limit (2): the script answers limit_reached, so it is asked
        again = await alice.call("cart:add", {"drop_id": drop_id})
    assert again["error"]["code"] == "limit_reached"
    assert [args[0] for args in sent] == ["EVALSHA"]  # alice's, only
    assert not bob.received("cart:updated") and not carol.received("cart:updated")

    # A restock: the next buyer reserves at once.
    restocked = await host.call("drop:restock", {"drop_id": drop_id, "add": 1})
    assert restocked["ok"] and restocked["drop"]["remaining"] == 1
    assert not server.app[SHOP].sold_out.knows(ROOM, drop_id)
    added = await carol.call("cart:add", {"drop_id": drop_id})
    assert added["ok"], added
    assert added["cart"]["lines"][0]["qty"] == 1


async def test_units_held_in_a_cart_coming_back_let_buyers_reserve(server: Harness) -> None:
    await _is_open(server)
    _, drop_id = await _drop(server, stock=1)
    alice = await server.connect(ROOM, "alice")
    added = await alice.call("cart:add", {"drop_id": drop_id})
    assert added["ok"]
    bob = await server.connect(ROOM, "bob")
    await _sold_out(bob, drop_id)
    await server.app[SHOP].sold_out.settle()
    assert not server.app[SHOP].sold_out.knows(ROOM, drop_id)  # one unit is held: it may come back
    line = added["cart"]["lines"][0]["line_id"]
    assert (await alice.call("cart:remove", {"line_id": line}))["ok"]
    assert (await bob.call("cart:add", {"drop_id": drop_id}))["ok"]


@pytest.fixture
async def second(tmp_path: Path, redis_url: str) -> AsyncIterator[Harness]:
    """Another server process's worth on the same Redis."""
    other = await start_server(make_settings(tmp_path / "second", redis_url))
    yield other
    await stop_server(other)


async def test_a_restock_on_another_process_reaches_this_ones_cache(
    server: Harness, second: Harness
) -> None:
    await _is_open(server)
    await _is_open(second)
    _, drop_id = await _drop(server, stock=1)
    await _buy_all(server, drop_id, 1)
    bob = await server.connect(ROOM, "bob")
    await _sold_out(bob, drop_id)
    await server.app[SHOP].sold_out.settle()
    assert server.app[SHOP].sold_out.knows(ROOM, drop_id)

    host_there = await second.connect(ROOM, "host", "host")
    restocked = await host_there.call("drop:restock", {"drop_id": drop_id, "add": 3})
    assert restocked["ok"], restocked
    async with asyncio.timeout(5):  # told through Redis pub/sub
        while server.app[SHOP].sold_out.knows(ROOM, drop_id):
            await asyncio.sleep(0.02)
    assert (await bob.call("cart:add", {"drop_id": drop_id}))["ok"]


async def test_the_cache_answers_what_the_script_answers(redis_url: str) -> None:
    """Each reservation of a drop sold out for good (or ended): the cache's
    answer, when it gives one, is the reservation script's, code and message."""
    redis = redis_client(redis_url)
    scripts = Scripts(redis)
    room, now = "mirror", time.time()
    try:
        for drop_id, requires_account, limit in (("a", "0", 0), ("b", "1", 0), ("c", "0", 2)):
            fields: dict[Any, Any] = {
                "product_id": "tee",
                "price": 100,
                "currency": "usd",
            }
            fields.update({"starts_at": now - 60, "ends_at": now + 60, "limit": limit})
            fields.update({"tracked": 1, "given": 3, "left": 0, "held": 0, "sold": 3})
            fields.update({"announced": "sold_out", "requires_account": requires_account})
            await redis.hset(keys.drop(room, drop_id), mapping=fields)
            await redis.hset(keys.drop_buyers(room, drop_id), mapping={"guest-x": 2, "guest-y": 1})
        answered: dict[str, int] = {}
        for drop_id in ("a", "b", "c"):
            drop_keys = [keys.drop(room, drop_id), keys.drop_buyers(room, drop_id)]
            for at in (now, now + 120):  # in the window, then ended
                final = final_from_script(
                    await scripts.run("commerce/drop_final", drop_keys, [repr(at)])
                )
                assert final is not None
                for identity in ("guest-x", "guest-y", "guest-z", "acct_q"):
                    for qty in (1, 2):
                        target = Target(room, "", drop_id)
                        script_keys = [*line_keys(room, identity, target), keys.slots(room)]
                        signed_in = identity.startswith("acct_")
                        args = [identity, target.line_id, qty, repr(at), repr(at + 600), 99]
                        args += ["cart1", drop_id, "1" if signed_in else "0"]
                        with pytest.raises(DomainError) as refused:
                            await scripts.run("commerce/reserve", script_keys, args)
                        mine = final.refusal(identity, qty, at, signed_in)
                        if mine is not None:
                            answered[mine.code] = answered.get(mine.code, 0) + 1
                            assert (mine.code, mine.message) == (
                                refused.value.code,
                                refused.value.message,
                            ), (drop_id, at, identity, qty)
        # Ended: every one. In the window: all of drop a, the account's of b,
        # and the guests of c still under their limit (y once, z twice).
        assert answered == {"sold_out": 13, "conflict": 24}
    finally:
        await redis.aclose()
