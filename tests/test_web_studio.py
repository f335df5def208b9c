"""Browser tests of the creator studio (issue 12), two pages: the admin
invites a creator (HTTP); the creator signs in on /studio, creates a room
from a template, a product with an image and a tone, an episode in their
time zone; the calendar lists it; a listener follows the room from the
lobby and gets the reminder when the clock reaches it; the creator mints a
moderator invite; the moderator's console pins from the product list and
schedules a drop at a date and time, showing reserved vs sold; the creator
goes live (the follower is mailed) and revokes the invite (the moderator's
console is closed). Also: prices typed in major units become exact minor
units, and an account that is not a creator is told to ask for an invite.
"""

import asyncio
import contextlib
import datetime
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from PIL import Image
from playwright.async_api import Locator, Page, expect

from accounts.eml import Saved, latest
from server.appkeys import SCHEDULER
from tests.browser import SCREENSHOTS, Browsers, Tab, browsers
from tests.harness import Harness, connect
from tests.sound_helpers import make_sound

__all__ = ["browsers"]

ROOT = Path(__file__).resolve().parent.parent
CREATOR = "ines.creator@example.com"
LISTENER = "lee.listener@example.com"
ROOM = "harbour"
CREATOR_ZONE = "America/New_York"
LISTENER_ZONE = "Asia/Tokyo"


# -- prices (Node runs the page's own module; no browser needed) ------------

MONEY_CHECK = """
import { toMinor, toMajorText } from "./web_client/static/js/studio/money.js";
const ok = [["12.50", "eur"], ["0.29", "usd"], ["12,5", "eur"], ["19.99", "usd"],
            ["500", "jpy"], ["1.234", "bhd"], ["1234567.89", "eur"]].map(([t, c]) => toMinor(t, c));
const refused = [["12.5", "jpy"], ["1.234", "eur"], ["12.50 €", "eur"], ["0", "eur"], ["-1", "eur"]]
  .map(([t, c]) => { try { toMinor(t, c); return null; } catch (e) { return e.message; } });
const back = [[1250, "eur"], [5, "eur"], [500, "jpy"], [1234, "bhd"]]
  .map(([m, c]) => toMajorText(m, c));
console.log(JSON.stringify({ ok, refused, back }));
"""


def test_prices_typed_in_major_units_become_exact_minor_units() -> None:
    node = shutil.which("node")
    assert node, "node is not installed: run `make setup`"
    out = subprocess.run(
        [node, "--input-type=module", "-e", MONEY_CHECK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    # 0.29 * 100 is 28.999999999999996 in floats: the digits are shifted as text.
    assert result["ok"] == [1250, 29, 1250, 1999, 500, 1234, 123456789]
    assert result["refused"] == [
        "JPY has no decimals: enter a whole amount",
        "EUR has at most 2 decimals",
        "Enter a price such as 12.50",
        "The price must be more than zero",
        "Enter a price such as 12.50",
    ]
    assert result["back"] == ["12.50", "0.05", "500", "1.234"]


# -- mail -------------------------------------------------------------------


class Mailbox:
    """The embedded mailer's .eml files, each mail read once."""

    def __init__(self, server: Harness) -> None:
        self.directory = server.settings.mail_dir
        self.seen: set[Path] = set()

    async def next(self, to: str, match: Callable[[Saved], bool] = lambda m: True) -> Saved:
        for _ in range(300):
            mails = await asyncio.to_thread(latest, self.directory, 50)
            for mail in mails:
                if mail.path in self.seen or to.lower() not in mail.to.lower():
                    continue
                if match(mail):
                    self.seen.add(mail.path)
                    return mail
            await asyncio.sleep(0.1)
        raise AssertionError(f"no mail to {to}")

    async def skip_all(self) -> None:
        self.seen |= {m.path for m in await asyncio.to_thread(latest, self.directory, 500)}


async def _sign_in(page: Page, mailbox: Mailbox, email: str) -> None:
    """Sign in from the page's header; the mailed link comes back to it."""
    await mailbox.skip_all()
    await page.get_by_role("button", name="Sign in").click()
    form = page.get_by_role("form", name="Sign in")
    await form.get_by_label("Your email").fill(email)
    await form.get_by_role("button", name="Email me a sign-in link").click()
    await expect(form.get_by_role("status")).to_contain_text("Check your mail")
    mail = await mailbox.next(email, lambda m: m.link is not None)
    assert mail.link
    back = page.url
    await page.goto(mail.link)
    await expect(page).to_have_url(back)
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _png(path: Path) -> Path:
    image = Image.new("RGB", (640, 480), (30, 60, 120))
    for x in range(0, 640, 40):
        for y in range(0, 480, 40):
            if (x + y) // 40 % 2:
                image.paste((240, 180, 60), (x, y, x + 40, y + 40))
    image.save(path, "PNG")
    return path


async def _in_zone(page: Page, zone: str) -> None:
    """This page's clock reads as in `zone` (as a person's browser there would)."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Emulation.setTimezoneOverride", {"timezoneId": zone})


async def _local_input(page: Page, unix: float, seconds: bool = False) -> str:
    value: str = await page.evaluate(
        """async ([t, s]) => {
          const { unixToLocalInput } = await import("/static/js/studio/when.js");
          return unixToLocalInput(t, s);
        }""",
        [unix, seconds],
    )
    return value


async def _unstick(page: Page) -> None:
    """Element screenshots scroll: the sticky header would cover their top."""
    await page.evaluate("document.querySelector('.topbar').style.position = 'static'")


async def _unix_of(page: Page, local: str) -> int:
    value: int = await page.evaluate("(v) => Math.round(new Date(v).getTime() / 1000)", local)
    return value


# -- the whole story ----------------------------------------------------------


async def _create_room(page: Page) -> None:
    rooms = page.get_by_role("region", name="Your rooms")
    form = rooms.get_by_role("form", name="New room")
    await form.get_by_label("Template").select_option(label="Talk + Q&A")
    # The template chose the modules; they stay editable.
    await expect(form.get_by_label("Q&A")).to_be_checked()
    await expect(form.get_by_label("Shop")).not_to_be_checked()
    await form.get_by_label("Shop").check()
    await form.get_by_label("Title").fill("Harbour sessions")
    await form.get_by_label("Room id (optional)").fill(ROOM)
    await form.get_by_role("button", name="Create room").click()
    card = rooms.locator(".room-card").filter(has_text="Harbour sessions")
    for part in ("harbour · ", "Shop", "Q&A", "open to guests"):
        await expect(card).to_contain_text(part)
    await expect(page.get_by_role("heading", name="Room: Harbour sessions")).to_be_visible()


async def _create_products(page: Page, tmp_path: Path) -> dict[str, str]:
    """Two products through the form; their ids by title."""
    panel = page.get_by_role("region", name="Your products")
    form = panel.get_by_role("form", name="New product")
    await form.get_by_label("Title").fill("Harbour chime")
    await form.get_by_label("Description").fill("A bright chime recorded at the harbour.")
    await form.get_by_label("Price").fill("2.5")
    await form.get_by_label("Currency").select_option("eur")
    await form.get_by_label("Kind").select_option("digital")
    await form.get_by_label("Image", exact=True).set_input_files(str(_png(tmp_path / "chime.png")))
    await expect(form.get_by_role("img", name="Image preview")).to_be_visible()
    tone = make_sound(tmp_path / "chime.wav", freq=880.0, seconds=6.0)
    await form.get_by_label("Tone", exact=True).set_input_files(str(tone))
    await form.get_by_label("Length (s, at most 30)").fill("4")
    await _unstick(page)
    await panel.screenshot(path=str(SCREENSHOTS / "studio_product.png"))
    await form.get_by_role("button", name="Create product").click()
    progress = panel.locator(".product-progress-text")
    # For the screenshot, a moment while the tone processes (a quick job may pass it unseen).
    with contextlib.suppress(AssertionError):
        processing = re.compile(r"Processing the tone [1-9]")
        await expect(progress).to_contain_text(processing, timeout=10_000)
    await form.screenshot(path=str(SCREENSHOTS / "studio_product_progress.png"))
    await expect(progress).to_contain_text("Harbour chime saved, tone ready.", timeout=90_000)
    chime = panel.locator(".product").filter(has_text="Harbour chime")
    await expect(chime).to_contain_text("€2.50 · digital · unlimited")
    await expect(chime).to_contain_text(re.compile(r"Tone ready · 4\.0 s"))
    await expect(chime.locator("img.product-thumb")).to_be_visible()

    # A zero-decimal currency: "500" yen is 500, a decimal is refused at the field.
    await form.get_by_label("Title").fill("Paper lantern")
    await form.get_by_label("Kind").select_option("physical")
    await form.get_by_label("Currency").select_option("jpy")
    await form.get_by_label("Price").fill("500.5")
    await form.get_by_label("Stock").fill("5")
    await form.get_by_role("button", name="Create product").click()
    await expect(form.get_by_label("Price")).to_have_attribute("aria-invalid", "true")
    await expect(form).to_contain_text("JPY has no decimals")
    await form.get_by_label("Price").fill("500")
    await form.get_by_role("button", name="Create product").click()
    lantern = panel.locator(".product").filter(has_text="Paper lantern")
    await expect(lantern).to_contain_text("¥500 · physical · 5 in stock")

    # Edited: the form starts from the product (price back in major units).
    await lantern.get_by_role("button", name="Edit Paper lantern").click()
    edit = panel.get_by_role("form", name="Edit Paper lantern")
    await expect(edit.get_by_label("Price")).to_have_value("500")
    await expect(edit.get_by_label("Kind")).to_be_disabled()
    await edit.get_by_label("Price").fill("650")
    await edit.get_by_role("button", name="Save product").click()
    await expect(lantern).to_contain_text("¥650 · physical · 5 in stock")

    mine = await page.evaluate(
        """async () => {
          const { myProducts } = await import("/static/js/studio/api.js");
          return (await myProducts()).map(
            (p) => [p.title, p.price, p.currency, p.kind, !!p.image_url, p.id]);
        }"""
    )
    assert sorted(p[:5] for p in mine) == [
        ["Harbour chime", 250, "eur", "digital", True],
        ["Paper lantern", 650, "jpy", "physical", False],
    ]
    return {p[0]: p[5] for p in mine}


async def _add_episode(page: Page, server: Harness) -> int:
    editor = page.get_by_role("region", name="Room: Harbour sessions")
    form = editor.get_by_role("form", name="New episode")
    starts = form.get_by_label(f"Starts ({CREATOR_ZONE})")
    local = await _local_input(page, (int(time.time() // 3600) + 26) * 3600)
    await form.get_by_label("Episode title").fill("Harbour at dusk")
    await starts.fill(local)
    await form.get_by_label("Lasts (minutes)").fill("90")
    await form.get_by_role("button", name="Add episode").click()
    episode = editor.locator(".episode").filter(has_text="Harbour at dusk")
    await expect(episode).to_be_visible()
    starts_at = await _unix_of(page, local)
    # The wall clock time typed in New York, not in the machine's zone.
    typed = datetime.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(CREATOR_ZONE))
    assert starts_at == typed.timestamp()
    when = await page.evaluate(
        """async (t) => (await import("/static/js/studio/when.js")).formatWhen(t)""", starts_at
    )
    await expect(episode).to_contain_text(when)

    # One more, then deleted: gone from the list and from the server.
    await form.get_by_label("Episode title").fill("Soundcheck")
    await starts.fill(await _local_input(page, starts_at - 3600))
    await form.get_by_role("button", name="Add episode").click()
    soundcheck = editor.locator(".episode").filter(has_text="Soundcheck")
    await expect(editor.locator(".episode").first).to_contain_text("Soundcheck")  # soonest first
    await soundcheck.get_by_role("button", name="Delete episode Soundcheck").click()
    await expect(soundcheck).to_have_count(0)
    status, body = await server.request("GET", f"/api/v1/rooms/{ROOM}/episodes")
    assert status == 200, body
    (stored,) = body["episodes"]
    assert (stored["starts_at"], stored["ends_at"]) == (starts_at, starts_at + 90 * 60)
    return starts_at


async def _calendar(server: Harness, starts_at: int) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/v1/rooms/{ROOM}/calendar.ics") as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/calendar")
        text = await resp.text()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(starts_at))
    assert "BEGIN:VEVENT" in text and "SUMMARY:Harbour at dusk" in text
    assert f"DTSTART:{stamp}" in text


async def _follow_from_the_lobby(tab: Tab, server: Harness, mailbox: Mailbox) -> None:
    page = tab.page
    await page.goto(f"{server.url}/")
    card = page.locator(".room-card").filter(has_text="Harbour sessions")
    calendar = card.get_by_role("link", name=re.compile("Add .* to your calendar"))
    await expect(calendar).to_be_visible()
    # The episode's time as the listener reads it: in Tokyo.
    await expect(card.locator(".episode-line time")).to_contain_text("GMT+9")
    await expect(card).to_contain_text("Sign in to follow")
    await _sign_in(page, mailbox, LISTENER)
    follow = card.get_by_role("button", name="Follow Harbour sessions for reminders")
    await follow.click()
    await expect(card.get_by_role("button", name=re.compile("^Following"))).to_have_attribute(
        "aria-pressed", "true"
    )
    await _unstick(page)
    await card.screenshot(path=str(SCREENSHOTS / "lobby_episodes.png"))
    # Reloaded: still following (the server's list, not the page's memory).
    await page.reload()
    await expect(card.get_by_role("button", name=re.compile("^Following"))).to_be_visible()


async def _reminder_arrives(server: Harness, mailbox: Mailbox, starts_at: int) -> None:
    """Move the server's clock to just inside the reminder lead: the follower is mailed."""
    scheduler = server.app[SCHEDULER]
    real = scheduler.clock
    lead = server.settings.reminder_lead_s
    shift = starts_at - lead + 5 - time.time()
    scheduler.clock = lambda: real() + shift
    try:
        mail = await mailbox.next(LISTENER, lambda m: "Harbour" in m.subject)
    finally:
        scheduler.clock = real
    assert mail.subject == "Starting soon: Harbour at dusk (Harbour sessions)"


async def _invite_moderator(page: Page) -> str:
    editor = page.get_by_role("region", name="Room: Harbour sessions")
    form = editor.get_by_role("form", name="New invite link")
    await form.get_by_label("Role").select_option("moderator")
    await form.get_by_label("Name").fill("Mo")
    await form.get_by_role("button", name="Create invite link").click()
    link = editor.get_by_label(re.compile("^Invite link for Mo"))
    await expect(link).to_have_value(re.compile(rf"/host/{ROOM}#token="))
    await editor.get_by_role("button", name="Copy link").click()
    await expect(editor.get_by_role("button", name="Copied")).to_be_visible()
    invite = editor.locator(".invite").filter(has_text="Mo · moderator")
    await expect(invite).to_contain_text("Expires")
    await _unstick(page)
    await page.get_by_role("region", name="Room: Harbour sessions").screenshot(
        path=str(SCREENSHOTS / "studio_room.png")
    )
    return await link.input_value()


async def _moderator_pins_and_drops(page: Page, server: Harness, chime: str) -> None:
    await expect(page.locator("header").get_by_role("status")).to_have_text("Connected")
    await expect(page.locator("#role-badge")).to_have_text("moderator")
    picker = page.get_by_label("Product to pin")
    for offered in ("Harbour chime · €2.50 · digital", "Paper lantern · ¥650 · physical"):
        await expect(picker.locator("option", has_text=offered)).to_have_count(1)
    await picker.select_option(chime)
    await page.get_by_label("Slot", exact=True).select_option("1")
    await page.get_by_role("button", name="Pin", exact=True).click()
    await expect(page.locator(".slot-row")).to_contain_text("1. Harbour chime · €2.50")

    panel = page.locator("#drops-panel")
    await panel.get_by_label("Product for the drop").select_option(chime)
    starts = time.time() + 3
    await panel.get_by_label(re.compile(r"^Starts at")).fill(await _local_input(page, starts, True))
    await panel.get_by_label("Stock", exact=True).fill("3")
    await panel.get_by_role("button", name="Schedule drop").click()
    row = panel.locator(".drop-row").filter(has_text="Harbour chime")
    await expect(row).to_contain_text("3 of 3 left")
    await expect(row.locator(".badge")).to_have_text("live", timeout=15_000)
    await _unstick(page)
    await page.locator("#slots-panel").screenshot(path=str(SCREENSHOTS / "host_product_picker.png"))

    # A buyer reserves one, then pays: the row shows reserved, then sold.
    buyer = await _buyer(server)
    (drop,) = (await buyer.wait_for("room:state"))["drops"]
    assert (await buyer.call("cart:add", {"drop_id": drop["id"], "qty": 1}))["ok"]
    await _counts(row, "2 of 3 left", "1 reserved", "0 sold")
    paid = await buyer.call("checkout:start", {"payment_method": "pm_card_visa"})
    assert paid.get("status") == "succeeded", paid
    await _counts(row, "2 of 3 left", "0 reserved", "1 sold")
    await panel.screenshot(path=str(SCREENSHOTS / "host_drop_schedule.png"))


async def _counts(row: Locator, left: str, held: str, sold: str) -> None:
    for part, text in ((".left", left), (".held", held), (".sold", sold)):
        await expect(row.locator(part)).to_have_text(text, timeout=15_000)


async def _buyer(server: Harness) -> Any:
    status, body = await server.request("POST", f"/api/v1/rooms/{ROOM}/guest", json={"name": "Ann"})
    assert status == 201, body
    client = await connect(server.url, body["token"])
    server.clients.append(client)
    return client


@pytest.mark.browser
async def test_a_creator_sets_up_an_event_and_a_moderator_runs_the_shop(
    server: Harness, browsers: Browsers, tmp_path: Path
) -> None:
    mailbox = Mailbox(server)
    await server.admin_post("/api/v1/creators", {"email": CREATOR, "name": "Ines"})
    studio = await browsers.open(None)
    page = studio.page
    await _in_zone(page, CREATOR_ZONE)
    await page.goto(f"{server.url}/studio")
    await expect(page.locator("#studio-intro")).to_contain_text("Creators sign in here")
    await _sign_in(page, mailbox, CREATOR)
    await expect(page.locator("#studio-intro")).to_contain_text(f"Signed in as {CREATOR}")

    await _create_room(page)
    ids = await _create_products(page, tmp_path)
    starts_at = await _add_episode(page, server)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOTS / "studio.png"), full_page=True)
    await _calendar(server, starts_at)

    other = await browsers.open(None)
    await _in_zone(other.page, LISTENER_ZONE)
    await _follow_from_the_lobby(other, server, mailbox)
    await _reminder_arrives(server, mailbox, starts_at)

    invite = await _invite_moderator(page)
    await other.page.goto(invite)
    await _moderator_pins_and_drops(other.page, server, ids["Harbour chime"])

    # The room shows the product's image (re-encoded by the server) on its card.
    await page.goto(f"{server.url}/r/{ROOM}")
    slot = page.locator(".slot").filter(has_text="Harbour chime")
    image = slot.locator("img.product-image")
    await expect(image).to_be_visible()
    await expect(image).to_have_attribute("src", re.compile(r"^/files/images/"))
    assert await image.evaluate("(img) => img.complete && img.naturalWidth > 0")
    await _unstick(page)
    await slot.screenshot(path=str(SCREENSHOTS / "room_product_image.png"))
    await page.goto(f"{server.url}/studio")

    # The creator opens their own console (host, through /join) and goes live:
    # the follower is mailed; the room is live in the lobby.
    await page.get_by_role("button", name="Open the host console of Harbour sessions").click()
    await expect(page).to_have_url(re.compile(rf"/host/{ROOM}#token="))
    await expect(page.locator("#role-badge")).to_have_text("host")
    await page.get_by_role("button", name="● Go live").click()
    await expect(page.locator("#live-badge")).to_be_visible(timeout=15_000)
    await mailbox.next(LISTENER, lambda m: m.subject == "Live now: Harbour sessions")

    # Revoked in the studio: the moderator's console is closed.
    await page.goto(f"{server.url}/studio")
    await page.get_by_role("button", name="Manage Harbour sessions").click()
    await page.get_by_role("button", name="Revoke the invite for Mo").click()
    mo = page.locator(".invite").filter(has_text="Mo · moderator")
    await expect(mo).to_contain_text("Revoked")
    await expect(mo.get_by_role("button")).to_be_hidden()
    await expect(other.page.locator("header").get_by_role("status")).not_to_have_text(
        "Connected", timeout=15_000
    )
    assert studio.script_errors() == []
    assert other.script_errors() == []


@pytest.mark.browser
async def test_an_account_that_is_not_a_creator_is_told_to_ask_for_an_invite(
    server: Harness, browsers: Browsers
) -> None:
    mailbox = Mailbox(server)
    tab = await browsers.open(f"{server.url}/studio")
    await _sign_in(tab.page, mailbox, LISTENER)
    intro = tab.page.get_by_role("alert").filter(has_text="not a creator account")
    await expect(intro).to_contain_text("ask the platform's team for an invite")
    await expect(tab.page.get_by_role("region", name="Your rooms")).to_be_hidden()
    await tab.screenshot("studio_not_creator", full_page=False)
    assert tab.script_errors() == []
