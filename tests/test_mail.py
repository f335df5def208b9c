"""Mail delivery: the outbox keeps mails while SMTP is down and retries with
backoff (the gauge shows what waits), gives up after its tries, the
embedded `.eml` mode with `droproom mail`, the sender setting, and receipts
when an order is announced paid (once per order)."""

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from accounts import keys
from accounts.outbox import Backoff
from commerce.events import ORDER_UPDATED
from kernel.events import to_identity
from server.accounts.resources import OUTBOX
from server.appkeys import ACCOUNTS, EMITTER
from tests.harness import Harness, free_port, start_server, stop_server
from tests.harness import test_settings as make_settings
from tests.mail_helpers import SmtpServer, ask, code_in, exchange, text_of


async def gauge(server: Harness) -> float:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/metrics") as resp:
        text = await resp.text()
    found = re.search(r"^droproom_mail_waiting (\S+)$", text, re.M)
    assert found, "the gauge is missing"
    return float(found.group(1))


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_the_outbox_retries_until_smtp_is_back(tmp_path: Path, redis_url: str) -> None:
    port = free_port()  # nothing listens there yet
    server = await start_server(
        make_settings(tmp_path / "data", redis_url, smtp_url=f"smtp://127.0.0.1:{port}")
    )
    smtp = SmtpServer(port)
    try:
        server.app[OUTBOX].backoff = Backoff(base_s=0.2, cap_s=0.5)
        assert (await ask(server, "patient@example.com"))[0] == 202
        redis = server.app_rooms_redis()

        async def tried_twice() -> bool:
            ids = await redis.zrange(keys.OUTBOX, 0, -1)
            tries = [int(await redis.hget(keys.mail(i), "tries") or 0) for i in ids]
            return bool(tries) and tries[0] >= 2

        await eventually(tried_twice)
        assert await gauge(server) == 1
        await smtp.start()
        [mail] = await smtp.inbox.wait_for(1)
        assert mail["To"] == "patient@example.com"
        status, body = await exchange(server, code_in(mail))
        assert status == 200 and body["account"]["email"] == "patient@example.com"

        async def drained() -> bool:
            return await gauge(server) == 0

        await eventually(drained)
        assert await redis.zcard(keys.OUTBOX) == 0
        assert await redis.keys("{mail}:msg:*") == []  # a sent mail is removed
    finally:
        await stop_server(server)
        await smtp.stop()


async def test_a_mail_is_given_up_after_its_tries(
    tmp_path: Path, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="accounts.outbox")
    port = free_port()
    server = await start_server(
        make_settings(tmp_path / "data", redis_url, smtp_url=f"smtp://127.0.0.1:{port}")
    )
    try:
        server.app[OUTBOX].backoff = Backoff(base_s=0.05, cap_s=0.1, max_tries=3)
        await ask(server, "lost@example.com")
        redis = server.app_rooms_redis()

        async def gone() -> bool:
            return any("given up after 3 tries" in r.getMessage() for r in caplog.records)

        await eventually(gone)
        assert await redis.zcard(keys.OUTBOX) == 0
        assert await redis.keys("{mail}:msg:*") == []
    finally:
        await stop_server(server)


async def test_embedded_mode_writes_eml_files_that_droproom_mail_lists(
    tmp_path: Path, redis_url: str
) -> None:
    data = tmp_path / "data"
    server = await start_server(
        make_settings(data, redis_url, mail_from="Drops <drops@shop.example>")
    )
    try:
        await ask(server, "offline@example.com", next="/r/demo")
        mail_dir = data / "mail"

        async def written() -> bool:
            return mail_dir.is_dir() and any(mail_dir.glob("*.eml"))

        await eventually(written)
        [path] = list(mail_dir.glob("*.eml"))
        assert path.stat().st_mode & 0o077 == 0  # private: it holds a sign-in link
        raw = path.read_text()
        assert "From: Drops <drops@shop.example>" in raw
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server.cli", "mail", "--data-dir", str(data), "--limit", "5"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "offline@example.com" in out and "Your droproom sign-in link" in out
        link = re.search(r"sign in: (\S+)", out)
        assert link and link.group(1).startswith(server.url + "/signin#code=")
        assert link.group(1).endswith("&next=/r/demo")
        code = link.group(1).split("#code=")[1].split("&")[0]
        status, body = await exchange(server, code)
        assert status == 200 and body["account"]["email"] == "offline@example.com"
    finally:
        await stop_server(server)


def test_droproom_mail_says_when_there_is_none(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "mail", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "no mail" in result.stdout


def _paid(order_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": order_id,
        "status": "paid",
        "lines": [{"title": "Ringtone", "qty": 1, "amount": 199, "product_id": "tone"}],
        "total": 199,
        "currency": "eur",
        **extra,
    }


async def test_a_paid_order_gets_one_receipt(tmp_path: Path, redis_url: str) -> None:
    smtp = SmtpServer()
    await smtp.start()
    server = await start_server(make_settings(tmp_path / "data", redis_url, smtp_url=smtp.url))
    try:
        account = await server.app[ACCOUNTS].get_or_create("buyer@example.com", 1.0)
        emit = server.app[EMITTER].emit
        paid = to_identity("r1", account.id, ORDER_UPDATED, {"order": _paid("ord1")})
        await emit([paid, paid])  # announced twice (webhook and reconciler)
        guest = {"order": _paid("ord2", email="guest@example.com")}
        await emit([to_identity("r1", "guest-1", ORDER_UPDATED, guest)])
        pending = {"order": {**_paid("ord3"), "status": "pending"}}
        await emit([to_identity("r1", account.id, ORDER_UPDATED, pending)])
        await emit([to_identity("r1", "guest-2", ORDER_UPDATED, {"order": _paid("ord4")})])
        mails = await smtp.inbox.wait_for(2)
        await asyncio.sleep(1.2)  # two more delivery turns: nothing else comes
        assert sorted(m["To"] for m in smtp.inbox.messages) == [
            "buyer@example.com",
            "guest@example.com",
        ]
        text = text_of(mails[0])
        assert f"{server.url}/me" in text and "1.99 EUR" in text and "Ringtone" in text
    finally:
        await stop_server(server)
        await smtp.stop()
