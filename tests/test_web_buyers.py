"""Browser tests of buyers: sign in from the room through the mailed link,
save the card at the first purchase and buy the next tone in one click,
find both after a reload in "My purchases" and on /me, sign out; a guest who
signs in keeps what they bought as a guest; a guest's checkout of a
physical item asks an email (optional) and the address, with the server's
errors next to the field."""

import asyncio
import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from accounts.eml import latest
from tests.browser import PHONE, SCREENSHOTS, Browsers, Tab, browsers, fill_shipping, pay_with
from tests.harness import Harness, connect
from tests.test_buyers_checkout import THREE_D_SECURE, _authenticate, _payment_method
from tests.tone_files import ready_tone

__all__ = ["browsers"]

pytestmark = [pytest.mark.browser]

ROOM = "tones"
EMAIL = "lee.park+tones@Example.COM"


async def _room(server: Harness, tmp_path: Path) -> None:
    await server.create_room(id=ROOM, title="Tone night", guests=True)
    await ready_tone(server, tmp_path / "chime", "chime", "Harbour chime", 199)
    await ready_tone(server, tmp_path / "horn", "horn", "Fog horn", 249)
    await ready_tone(server, tmp_path / "bell", "bell", "Ship bell", 99)
    mod = await server.connect(ROOM, "mo", "moderator")
    for slot, pid in ((1, "chime"), (2, "horn"), (3, "bell")):
        assert (await mod.call("slot:pin", {"slot": slot, "product_id": pid}))["ok"]


async def _guest(browsers: Browsers, server: Harness, name: str = "Lee") -> Tab:
    tab = await browsers.open(f"{server.url}/r/{ROOM}", viewport=PHONE)
    await tab.page.get_by_label("Your name").fill(name)
    await tab.page.get_by_role("button", name="Join", exact=True).click()
    await _connected(tab.page)
    return tab


async def _connected(page: Page) -> None:
    await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")


async def _mailed_link(server: Harness, to: str) -> str:
    """The sign-in link of the newest mail to `to` (the embedded mailer's .eml files)."""
    for _ in range(100):
        mails = await asyncio.to_thread(latest, server.settings.mail_dir, 10)
        for mail in mails:
            if to.lower() in mail.to.lower() and mail.link:
                return mail.link
        await asyncio.sleep(0.1)
    raise AssertionError(f"no sign-in mail to {to}")


async def _sign_in(tab: Tab, server: Harness, email: str = EMAIL, shot: str | None = None) -> None:
    page = tab.page
    await page.get_by_role("button", name="Sign in").click()
    form = page.get_by_role("form", name="Sign in")
    await form.get_by_label("Your email").fill(email)
    await form.get_by_role("button", name="Email me a sign-in link").click()
    await expect(form.get_by_role("status")).to_contain_text("Check your mail")
    if shot:
        await tab.screenshot(shot, full_page=False)
    link = await _mailed_link(server, "lee.park+tones@example.com")
    assert link.startswith(f"{server.url}/signin#code=")
    await page.goto(link)
    # /signin exchanges the code and goes back to the room, joined as the account.
    await expect(page).to_have_url(re.compile(rf"/r/{ROOM}#?$"))
    await _connected(page)
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await expect(page.locator(".account-email")).to_have_text("lee.park+tones@example.com")


async def _save_card_elsewhere(server: Harness, page: Page, number: str | None = None) -> None:
    """The signed-in account buys the bell on another connection and saves
    its card (a test PaymentMethod, or one made from `number`)."""
    account = await page.evaluate("JSON.parse(localStorage.getItem('droproom.account'))")
    status, joined = await server.request("POST", f"/api/v1/rooms/{ROOM}/join", token=account)
    assert status == 200, joined
    other = await connect(server.url, joined["token"])
    server.clients.append(other)
    assert (await other.call("cart:add", {"product_id": "bell", "qty": 1}))["ok"]
    method = await _payment_method(server, number) if number else "pm_card_visa"
    paid = await other.call("checkout:start", {"payment_method": method, "save_card": True})
    assert paid.get("saved_card"), paid
    if paid.get("status") == "requires_action":
        await _authenticate(server, paid["payment_ref"], paid["client_secret"])
    else:
        assert paid.get("status") == "succeeded", paid
    order_id = paid["order_id"]
    await other.wait_for(
        "order:updated",
        lambda d: d["order"]["id"] == order_id and d["order"]["status"] == "paid",
        timeout=15,
    )


async def _download_buttons_of(page: Page, title: str) -> None:
    group = page.locator(".receipt").get_by_role("group", name=f"Download {title}")
    for label in ("iPhone", "Android", "Other phones", "All files (zip)"):
        await expect(
            group.get_by_role("button", name=re.compile(f"^{re.escape(label)}"))
        ).to_be_visible()


async def test_sign_in_save_the_card_then_buy_in_one_click_and_find_it_after_a_reload(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await _room(server, tmp_path)
    tab = await _guest(browsers, server)
    room = tab.page
    await _sign_in(tab, server, shot="signin")
    # No saved card yet: no one-click button.
    horn = room.locator(".slot").filter(has_text="Fog horn")
    await expect(horn.get_by_role("button", name="Add Fog horn to cart")).to_be_visible()
    await expect(horn.locator(".one-click")).to_be_hidden()

    # First purchase through the cart: signed in, no email asked; save the card.
    chime = room.locator(".slot").filter(has_text="Harbour chime")
    await chime.get_by_role("button", name="Add Harbour chime to cart").click()
    drawer = room.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Checkout").click()
    await expect(drawer.locator("#card-element input").first).to_be_visible()
    await expect(drawer.get_by_label("Email (optional)")).to_be_hidden()
    await drawer.get_by_label("Save this card for one-click buying").check()
    await pay_with(room)
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)
    await _download_buttons_of(room, "Harbour chime")
    await drawer.get_by_role("button", name="Back to the room").click()

    # localstripe's Stripe.js cannot make a PaymentMethod (its createPaymentMethod
    # is empty), so the page paid without saving; the same account saves its
    # card with a test PaymentMethod over Socket.IO, as another device would.
    await _save_card_elsewhere(server, room)
    await room.reload()
    await _connected(room)

    # Second purchase: one click, confirmed with the amount.
    one_click = horn.get_by_role("button", name="Buy Fog horn now with your saved card")
    await one_click.click()
    dialog = room.get_by_role("dialog")
    await expect(dialog).to_contain_text("Pay €2.49 now?")
    await dialog.get_by_role("button", name="Pay €2.49").click()
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)
    await expect(room.locator(".receipt")).to_contain_text("Paid €2.49")
    await _download_buttons_of(room, "Fog horn")
    await tab.screenshot("buyer-one-click-receipt", full_page=False)

    # Reloaded (still signed in): both purchases and both orders are listed.
    await room.reload()
    await _connected(room)
    mine = room.get_by_role("region", name="My purchases")
    await expect(mine).to_contain_text("Harbour chime")
    await expect(mine).to_contain_text("Fog horn")
    await expect(mine).to_contain_text("Ship bell")
    orders = room.get_by_role("region", name="My orders")
    await expect(orders).to_contain_text("1 × Fog horn · €2.49 · paid")
    await expect(orders).to_contain_text("1 × Harbour chime · €1.99 · paid")
    await mine.scroll_into_view_if_needed()
    await mine.screenshot(path=str(SCREENSHOTS / "buyer-my-purchases.png"))

    # /me: the account's purchases across rooms, then sign out.
    await room.get_by_role("link", name="My account").click()
    await expect(room).to_have_url(re.compile(r"/me$"))
    library = room.get_by_role("region", name="My purchases")
    await expect(library).to_contain_text("Fog horn")
    await expect(library.get_by_role("group", name="Download Harbour chime")).to_be_visible()
    await expect(room.get_by_role("region", name="My orders")).to_contain_text("paid")
    await tab.screenshot("me")
    await room.get_by_role("button", name="Sign out").click()
    await expect(room).to_have_url(re.compile(r"/$"))
    await expect(room.get_by_role("button", name="Sign in")).to_be_visible()
    assert await room.evaluate("localStorage.getItem('droproom.account')") is None
    assert tab.script_errors() == []


async def test_a_guest_who_signs_in_keeps_what_they_bought(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await _room(server, tmp_path)
    tab = await _guest(browsers, server)
    room = tab.page
    chime = room.locator(".slot").filter(has_text="Harbour chime")
    await chime.get_by_role("button", name="Add Harbour chime to cart").click()
    drawer = room.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Checkout").click()
    await drawer.get_by_role("button", name="Continue to payment").click()
    await pay_with(room)
    await expect(room.locator(".receipt")).to_contain_text("Payment received", timeout=20_000)
    await drawer.get_by_role("button", name="Back to the room").click()

    await _sign_in(tab, server)
    mine = room.get_by_role("region", name="My purchases")
    offer = room.get_by_role("region", name="You bought things here as a guest")
    await expect(offer).to_be_visible()
    await expect(mine).not_to_contain_text("Harbour chime")
    await offer.get_by_role("button", name="Keep them in my account").click()
    await expect(offer.get_by_role("status")).to_contain_text("in your account")
    await expect(mine).to_contain_text("Harbour chime")
    # The account has it on any device: /me lists it.
    await room.goto(f"{server.url}/me")
    await expect(room.get_by_role("region", name="My purchases")).to_contain_text("Harbour chime")


async def test_a_guest_checkout_asks_email_and_the_address_of_a_physical_item(
    server: Harness, browsers: Browsers
) -> None:
    await server.create_room(id=ROOM, title="Merch night", guests=True)
    tee = {"id": "tee", "title": "Tour tee", "price": 2500, "currency": "eur", "kind": "physical"}
    await server.admin_post("/api/v1/products", {**tee, "stock": 5})
    mod = await server.connect(ROOM, "mo", "moderator")
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "tee"}))["ok"]
    tab = await _guest(browsers, server)
    room = tab.page
    await room.get_by_role("button", name="Add Tour tee to cart").click()
    drawer = room.get_by_role("complementary", name="Your cart")
    await drawer.get_by_role("button", name="Checkout").click()
    email = drawer.get_by_label("Email (optional)")
    address = drawer.get_by_role("group", name="Shipping address")
    await expect(email).to_be_visible()
    await expect(address).to_be_visible()

    # Missing address fields are marked before anything is sent.
    await drawer.get_by_role("button", name="Continue to payment").click()
    name = address.get_by_label("Full name")
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(drawer.locator("#ship-name-error")).to_have_text("Required.")

    # The server's refusal is shown next to the field it is about.
    await fill_shipping(drawer, country="FR")
    await email.fill("lee@")
    await drawer.get_by_role("button", name="Continue to payment").click()
    await expect(drawer.locator("#checkout-email-error")).to_contain_text(re.compile("email", re.I))
    await expect(email).to_have_attribute("aria-invalid", "true")
    await drawer.evaluate("(el) => el.scrollTo(0, 0)")
    await tab.screenshot("checkout-address", full_page=False)
    await email.fill("lee@example.com")
    await expect(drawer.locator("#checkout-email-error")).to_be_empty()
    await drawer.get_by_role("button", name="Continue to payment").click()
    await pay_with(room)
    receipt = room.locator(".receipt")
    await expect(receipt).to_contain_text("Payment received", timeout=20_000)
    await expect(receipt).to_contain_text("Ships to Lee Park, 1 Harbour Road, 48058 Busan, FR")
    await expect(receipt).to_contain_text("lee@example.com")
    await expect(room.get_by_role("region", name="My orders")).to_contain_text(
        "1 × Tour tee · €25.00 · paid"
    )


async def test_a_drop_for_signed_in_buyers_asks_guests_to_sign_in(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await _room(server, tmp_path)
    mod = await server.connect(ROOM, "mo", "moderator")
    now = time.time()
    drop = {"product_id": "horn", "starts_at": now, "ends_at": now + 600, "stock": 3}
    answer = await mod.call("drop:schedule", {**drop, "requires_account": True})
    assert answer["ok"], answer
    tab = await _guest(browsers, server)
    room = tab.page
    card = room.locator(".drop").filter(has_text="Fog horn")
    await expect(card).to_contain_text("Signed-in buyers only: sign in to buy.")
    await expect(card.get_by_role("button", name="Buy now")).to_be_hidden()
    await _sign_in(tab, server)
    await expect(card).not_to_contain_text("sign in to buy")
    await card.get_by_role("button", name="Buy now").click()
    await expect(room.get_by_role("complementary", name="Your cart")).to_contain_text("Fog horn")


async def test_the_lobby_signs_in_and_a_foreign_next_stays_on_this_site(
    server: Harness, browsers: Browsers
) -> None:
    tab = await browsers.open(server.url + "/")
    page = tab.page
    await page.get_by_role("button", name="Sign in").click()
    form = page.get_by_role("form", name="Sign in")
    await form.get_by_label("Your email").fill("lee.park+tones@example.com")
    await form.get_by_role("button", name="Email me a sign-in link").click()
    await expect(form.get_by_role("status")).to_contain_text("Check your mail")
    link = await _mailed_link(server, "lee.park+tones@example.com")
    assert link.endswith("&next=/")
    # A link whose `next` was changed to another site still ends here.
    await page.goto(link.replace("&next=/", "&next=//evil.example/steal"))
    await expect(page).to_have_url(server.url + "/")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    checked = await page.evaluate(
        """async () => {
          const { safeNext } = await import("/static/js/account.js");
          return ["//evil.example/x", "https://evil.example/", "/\\\\evil", "javascript:x",
                  "/r/tones?x=1", "/me"].map(safeNext);
        }"""
    )
    assert checked == ["/", "/", "/", "/", "/r/tones?x=1", "/me"]
    # The code is single use: the same link again is refused with a message.
    await page.goto(link)
    await expect(page.get_by_role("alert")).to_contain_text("expired or was already used")


async def test_one_click_with_a_card_that_asks_three_d_secure(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    await _room(server, tmp_path)
    tab = await _guest(browsers, server)
    room = tab.page
    await _sign_in(tab, server)
    await _save_card_elsewhere(server, room, THREE_D_SECURE)
    await room.reload()
    await _connected(room)
    horn = room.locator(".slot").filter(has_text="Fog horn")
    await horn.get_by_role("button", name="Buy Fog horn now with your saved card").click()
    await room.get_by_role("dialog").get_by_role("button", name="Pay €2.49").click()
    # The bank's dialog (localstripe's Stripe.js modal) is finished in the page.
    await room.get_by_role("button", name="Complete authentication").click()
    receipt = room.locator(".receipt")
    await expect(receipt).to_contain_text("Payment received", timeout=20_000)
    await expect(receipt).to_contain_text("Paid €2.49")
