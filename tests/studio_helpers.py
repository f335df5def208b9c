"""Creators for the studio's tests: invited by the admin, signed in through
the mailed link (a real SMTP server on loopback), each with their token;
and small request helpers shared by the studio's test files."""

from dataclasses import dataclass
from typing import Any

from tests.harness import Client, Harness, connect
from tests.mail_helpers import SmtpServer, ask, code_in, exchange


@dataclass(frozen=True)
class Person:
    token: str
    id: str

    async def call(
        self, server: Harness, method: str, path: str, json: Any = None, **kw: Any
    ) -> tuple[int, Any]:
        return await server.request(method, path, json=json, token=self.token, **kw)


async def _signed_in(server: Harness, smtp: SmtpServer, before: int) -> Person:
    mails = await smtp.inbox.wait_for(before + 1)
    status, body = await exchange(server, code_in(mails[-1]))
    assert status == 200, body
    return Person(body["token"], body["account"]["id"])


async def creator(server: Harness, smtp: SmtpServer, email: str, name: str) -> Person:
    before = len(smtp.inbox.messages)
    await server.admin_post("/api/v1/creators", {"email": email, "name": name})
    return await _signed_in(server, smtp, before)


async def buyer(server: Harness, smtp: SmtpServer, email: str) -> Person:
    """A signed-in account without the creator role."""
    before = len(smtp.inbox.messages)
    status, _ = await ask(server, email)
    assert status == 202
    return await _signed_in(server, smtp, before)


def product_body(pid: str, **extra: Any) -> dict[str, Any]:
    body = {"id": pid, "title": f"Product {pid}", "price": 1500, "currency": "eur"}
    return {"kind": "physical", "stock": 10, **body, **extra}


async def make_product(server: Harness, who: Person, pid: str, **extra: object) -> dict:
    status, body = await who.call(server, "POST", "/api/v1/products", product_body(pid, **extra))
    assert status == 201, body
    return body


async def make_room(server: Harness, who: Person, room: str) -> dict:
    status, body = await who.call(server, "POST", "/api/v1/rooms", {"id": room, "title": room})
    assert status == 201, body
    return body


def forbidden(status: int, body: dict) -> bool:
    return status == 403 and body["error"]["code"] == "forbidden" and body["error"]["message"]


async def server_connect(server: Harness, token: str) -> Client:
    client = await connect(server.url, token)
    server.clients.append(client)
    await client.wait_for("room:state")
    return client
