"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives,
and helpers to read sign-in links out of mails."""

import asyncio
import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller

from tests.harness import Harness, free_port

CODE = re.compile(r"/signin#code=([A-Za-z0-9_-]+)")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.rcpt: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        self.messages.append(cast(EmailMessage, parsed))
        self.rcpt.append(list(envelope.rcpt_tos))
        return "250 OK"

    async def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        async with asyncio.timeout(timeout):
            while len(self.messages) < count:
                await asyncio.sleep(0.05)
        return self.messages


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await asyncio.to_thread(self.controller.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self.controller.stop)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())


def code_in(message: EmailMessage) -> str:
    found = CODE.search(text_of(message))
    assert found, text_of(message)
    return found.group(1)


async def ask(server: Harness, email_: str, **extra: Any) -> tuple[int, Any]:
    return await server.request("POST", "/api/v1/auth/email", json={"email": email_, **extra})


async def exchange(server: Harness, code: str) -> tuple[int, Any]:
    return await server.request("POST", "/api/v1/auth/exchange", json={"code": code})
