"""Browser tests of the shop in the room: pinned slots, a drop's countdown
on the server's clock, buying through the page with Stripe Elements against
localstripe (receipt, 3-D Secure, a declined card) and "sold out"."""

import datetime
import re
import time
from typing import Any

import pytest
from playwright.async_api import Locator, Page, expect

from server.shop.resources import SHOP
from tests.browser import PHONE, SCREENSHOTS, Browsers, browsers, fill_shipping
from tests.harness import Harness

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "market"
SHIP = {
    "shipping": {
        "name": "A",
        "line1": "1 Main St",
        "city": "X",
        "postal_code": "1",
        "country": "US",
    }
}
TEE = {"id": "tee", "title": "Tour tee", "price": 499, "currency": "usd", "kind": "physical"}


async def _setup(server: Harness) -> None:
    await server.create_room(id=ROOM, title="Night market")
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})


async def _host(server: Harness, browsers: Browsers) -> Page:
    token = server.token(ROOM, "hana", "host", name="Hana")
    tab = await browsers.open(f"{server.url}/host/{ROOM}#token={token}")
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    return tab.page


async def _local_time(page: Page, ahead_s: float) -> str:
    """The `datetime-local` value, in the page's zone, of `ahead_s` from now."""
    value: str = await page.evaluate(
        """async (ahead) => {
          const { unixToLocalInput } = await import("/static/js/studio/when.js");
          return unixToLocalInput(Date.now() / 1000 + ahead, true);
        }""",
        ahead_s,
    )
    return value


async def _listener(server: Harness, browsers: Browsers, identity: str = "lee") -> Page:
    token = server.token(ROOM, identity, "listener", name=identity.title())
    tab = await browsers.open(f"{server.url}/r/{ROOM}#token={token}", viewport=PHONE)
    await expect(tab.page.locator("header").get_by_role("status")).to_have_text("Connected")
    return tab.page


async def _live_drop(server: Harness, stock: int = 5) -> str:
    mod = await server.connect(ROOM, "mo", "moderator")
    now = time.time()
    payload = {"product_id": "tee", "starts_at": now, "ends_at": now + 600, "stock": stock}
    answer = await mod.call("drop:schedule", payload)
    assert answer["ok"], answer
    return str(answer["drop"]["id"])


async def _dress_room(server: Harness) -> None:
    """A poll with votes, a question, chat and a pinned slot, as in a real show."""
    mod = await server.connect(ROOM, "mo", "moderator", name="Mo")
    fans = [await server.connect(ROOM, f"fan{i}", name=f"Fan {i}") for i in range(3)]
    poll = await mod.call(
        "poll:create", {"question": "Which colour next?", "options": ["Black", "Sand"]}
    )
    for i, fan in enumerate(fans):
        await fan.call("poll:vote", {"poll_id": poll["poll"]["id"], "option": int(i > 0)})
    await fans[0].call("qa:ask", {"text": "Will the tee come in XXL?"})
    await fans[1].call("chat:send", {"text": "That riff!"})
    await fans[2].call("hand:raise", {})
    await mod.call("slot:pin", {"slot": 1, "product_id": "tee", "note": "Signed by the band"})


async def _pay_with(page: Page, number: str) -> None:
    """Type a card into the card element (Stripe.js's own fields) and pay."""
    card = page.locator("#card-element")
    await card.get_by_placeholder("number").fill(number)
    await card.get_by_placeholder("exp_month").fill("12")
    await card.get_by_placeholder("exp_year").fill("34")
    await card.get_by_placeholder("cvc").fill("123")
    await card.get_by_placeholder("postal_code").fill("94110")
    await page.get_by_role("button", name=re.compile(r"^Pay \$")).click()


async def _buy_now(page: Page) -> None:
    drop = page.locator(".drop").filter(has_text="Tour tee")
    await drop.get_by_role("button", name="Buy now").click()
    drawer = page.get_by_role("complementary", name="Your cart")
    await expect(drawer).to_be_visible()
    await expect(drawer.get_by_role("timer")).to_contain_text(
        re.compile(r"Held for you for \d+:\d\d")
    )
    await drawer.get_by_role("button", name="Checkout").click()
    await expect(drawer.get_by_text("Amount: $4.99")).to_be_visible()
    await ship_to(drawer)
    await drawer.get_by_role("button", name="Continue to payment").click()
    await expect(drawer.locator("#card-element input").first).to_be_visible()


async def ship_to(drawer: Locator) -> None:
    """The tee ships: a guest's checkout asks where to (and an optional email)."""
    await drawer.get_by_label("Email (optional)").fill("lee@example.com")
    await fill_shipping(drawer, country="FR", name="Lee Buyer")


async def test_pinned_slot_reaches_the_listener(server: Harness, browsers: Browsers) -> None:
    await _setup(server)
    host = await _host(server, browsers)
    room = await _listener(server, browsers)
    await host.get_by_label("Slot", exact=True).select_option("2")
    await host.get_by_label("Product to pin").select_option("tee")
    await host.get_by_label("Note (optional)").fill("Signed by the band")
    await host.get_by_role("button", name="Pin", exact=True).click()

    slot = room.locator(".slot").filter(has_text="Tour tee")
    await expect(slot).to_contain_text("$4.99")
    await expect(slot).to_contain_text("20 left")
    await expect(slot).to_contain_text("Signed by the band")
    await slot.get_by_role("button", name="Add Tour tee to cart").click()
    await expect(room.get_by_role("button", name="Cart, 1 item")).to_be_visible()
    await expect(slot).to_contain_text("19 left")

    await host.get_by_role("button", name="Unpin slot 2").click()
    await expect(slot).to_have_count(0)


async def test_money_is_formatted_for_its_currency(server: Harness, browsers: Browsers) -> None:
    tab = await browsers.open(server.url + "/")
    formatted = await tab.page.evaluate(
        """async () => {
          const { formatMoney } = await import("/static/js/format.js");
          return [formatMoney(499, "usd", "en-US"), formatMoney(500, "jpy", "en-US"),
                  formatMoney(1234, "eur", "de-DE"), formatMoney(1500, "bhd", "en-US")];
        }"""
    )
    assert formatted == ["$4.99", "¥500", "12,34\xa0€", "BHD\xa01.500"]


async def test_drop_counts_down_on_the_server_clock_then_sells(
    server: Harness, browsers: Browsers
) -> None:
    """The phone's clock is an hour fast: the countdown still follows the
    server's; when the drop opens the listener buys and gets a receipt."""
    await _setup(server)
    host = await _host(server, browsers)
    tab = await browsers.open(None, viewport=PHONE)
    room = tab.page
    fast = datetime.datetime.now() + datetime.timedelta(hours=1)
    await room.clock.install(time=fast)
    token = server.token(ROOM, "lee", "listener", name="Lee")
    await room.goto(f"{server.url}/r/{ROOM}#token={token}")

    await host.get_by_label("Product for the drop").select_option("tee")
    await host.get_by_label(re.compile(r"^Starts at")).fill(await _local_time(host, 4))
    await host.get_by_label("Stock", exact=True).fill("3")
    await host.get_by_role("button", name="Schedule drop").click()

    drop = room.locator(".drop").filter(has_text="Tour tee")
    await expect(drop).to_contain_text("Upcoming drop")
    await expect(drop.locator(".countdown")).to_have_text(re.compile(r"Starts in 0:0[1-4]"))
    await expect(drop.get_by_role("button", name="Buy now")).to_be_hidden()
    await expect(drop).to_contain_text("Live drop", timeout=15_000)
    await expect(drop).to_contain_text("$4.99")
    await _dress_room(server)
    await expect(room.get_by_role("article", name="Which colour next?")).to_contain_text("3 votes")
    await expect(host.get_by_role("list", name="Raised hands")).to_contain_text("Fan 2")
    await expect(host.locator(".slot-row")).to_contain_text("Tour tee")
    await tab.screenshot("room")
    await host.screenshot(path=str(SCREENSHOTS / "host.png"), full_page=True)
    await _buy_now(room)
    host_drop = host.locator(".drop-row").filter(has_text="Tour tee")
    await expect(host_drop).to_contain_text("2 of 3 left")
    await expect(host.get_by_role("list", name="Stock changes")).to_contain_text("1 reserved")

    await _pay_with(room, "4242424242424242")
    receipt = room.locator(".receipt")
    await expect(receipt).to_contain_text("Payment received", timeout=20_000)
    await expect(receipt).to_contain_text("Paid $4.99")
    await expect(receipt).to_contain_text("1 × Tour tee")
    orders = host.get_by_role("list", name="Orders")
    await expect(orders).to_contain_text(re.compile(r"lee · 1 × Tour tee · \$4\.99 · paid"))
    await expect(orders).to_contain_text("ships to Lee Buyer (FR)")  # name and country only
    await expect(orders).not_to_contain_text("Rue de la Paix")
    await tab.screenshot("room-receipt", full_page=False)
    await receipt.get_by_role("button", name="Back to the room").click()
    await expect(room.get_by_role("complementary", name="Your cart")).to_be_hidden()
    await expect(host_drop).to_contain_text("2 of 3 left")
    assert tab.script_errors() == []


async def test_three_d_secure_is_finished_in_the_page(server: Harness, browsers: Browsers) -> None:
    await _setup(server)
    await _live_drop(server)
    room = await _listener(server, browsers)
    await _buy_now(room)
    await _pay_with(room, "4000002500003155")
    await room.get_by_role("button", name="Complete authentication").click()
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)


async def test_declined_card_shows_its_message(server: Harness, browsers: Browsers) -> None:
    await _setup(server)
    await _live_drop(server)
    room = await _listener(server, browsers)
    await _buy_now(room)
    await _pay_with(room, "4000000000000341")
    drawer = room.get_by_role("complementary", name="Your cart")
    await expect(drawer.get_by_role("alert")).to_have_text(
        "Your card was declined. Try another card."
    )
    await expect(room.locator(".receipt")).to_be_hidden()
    # The order stays open for another card (PROTOCOL), the page says how many
    # attempts are left; a good card then pays the same order.
    await expect(drawer.locator(".pay-status")).to_contain_text("2 attempts left")
    await room.wait_for_timeout(1500)  # the decline's webhook lands: still open
    await _pay_with(room, "4242424242424242")
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)


async def test_a_reloaded_page_offers_to_finish_or_cancel(
    server: Harness, browsers: Browsers
) -> None:
    await _setup(server)
    await _live_drop(server)
    room = await _listener(server, browsers)
    await _buy_now(room)
    await room.reload()
    await expect(room.locator("header").get_by_role("status")).to_have_text("Connected")
    await room.get_by_role("button", name=re.compile(r"^Cart")).click()
    drawer = room.get_by_role("complementary", name="Your cart")
    waiting = drawer.get_by_role("region", name="Order waiting for payment")
    await expect(waiting).to_contain_text("$4.99 is waiting for its payment")
    await expect(waiting.get_by_role("button", name="Cancel order")).to_be_visible()
    await room.screenshot(path=str(SCREENSHOTS / "shop-pending-order.png"))
    await waiting.get_by_role("button", name="Finish paying").click()
    await expect(drawer.get_by_text("Amount: $4.99")).to_be_visible()
    await _pay_with(room, "4242424242424242")
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)


async def test_cancel_a_waiting_order_from_the_page(server: Harness, browsers: Browsers) -> None:
    await _setup(server)
    await _live_drop(server, stock=1)
    room = await _listener(server, browsers)
    await _buy_now(room)
    drop = room.locator(".drop").filter(has_text="Tour tee")
    await expect(drop.get_by_role("status")).to_have_text("All reserved, units may come back")
    drawer = room.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Close cart").click()
    await drop.screenshot(path=str(SCREENSHOTS / "shop-all-reserved.png"))
    await room.get_by_role("button", name=re.compile(r"^Cart")).click()
    await drawer.get_by_role("button", name="Cancel order").click()
    await expect(drop).to_contain_text("1 left")
    await expect(drawer.get_by_role("region", name="Order waiting for payment")).to_be_hidden()


async def test_sold_out_the_moment_it_is(server: Harness, browsers: Browsers) -> None:
    await _setup(server)
    drop_id = await _live_drop(server, stock=1)
    room = await _listener(server, browsers)
    drop = room.locator(".drop").filter(has_text="Tour tee")
    await expect(drop.get_by_role("button", name="Buy now")).to_be_visible()
    await expect(drop).to_contain_text("1 left")
    rival = await server.connect(ROOM, "rival")
    answer: Any = await rival.call("cart:add", {"drop_id": drop_id, "qty": 1})
    assert answer["ok"], answer
    # Only held by the rival: it may come back (PROTOCOL v2), so not "sold out".
    await expect(drop.get_by_role("status")).to_have_text("All reserved, units may come back")
    await expect(drop.get_by_role("button", name="Buy now")).to_be_hidden()
    paid = await rival.call("checkout:start", {**SHIP, "payment_method": "pm_card_visa"})
    assert paid["status"] == "succeeded", paid
    await expect(drop.get_by_role("status")).to_have_text("Sold out", timeout=10_000)

    # The host restocks: the buy button is back with the new stock.
    host = await _host(server, browsers)
    row = host.locator(".drop-row").filter(has_text="Tour tee")
    await expect(row).to_contain_text("0 of 1 left")
    await row.get_by_label("Add stock").fill("2")
    await row.get_by_role("button", name="Restock").click()
    await expect(row).to_contain_text("2 of 3 left")
    await expect(drop).to_contain_text("2 left")
    await expect(drop.get_by_role("button", name="Buy now")).to_be_visible()


async def test_the_host_may_keep_a_drop_to_signed_in_buyers(
    server: Harness, browsers: Browsers
) -> None:
    await _setup(server)
    host = await _host(server, browsers)
    await host.get_by_label("Product for the drop").select_option("tee")
    await host.get_by_label(re.compile(r"^Starts at")).fill(await _local_time(host, 0))
    await host.get_by_label("Signed-in buyers only").check()
    await host.get_by_role("button", name="Schedule drop").click()
    await expect(host.locator(".drop-row").filter(has_text="Tour tee")).to_be_visible()
    mod = await server.connect(ROOM, "mo", "moderator")
    (drop,) = mod.received("room:state")[0]["drops"]
    assert drop["requires_account"] is True
    room = await _listener(server, browsers)  # not signed in
    live = room.locator(".drop").filter(has_text="Tour tee")
    # The card says so and offers no Buy now to a guest (the server would refuse).
    await expect(live).to_contain_text("Signed-in buyers only: sign in to buy.")
    await expect(live.get_by_role("button", name="Buy now")).to_be_hidden()
    assert (await server.app[SHOP].drops.get(ROOM, drop["id"])).held == 0
