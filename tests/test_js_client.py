"""The official JavaScript Socket.IO client (Node + `socket.io-client` from
web_client/node_modules) against a real server: connect with `auth: {token}`,
get `room:state`, vote, get the ack and the coalesced `poll:updated`; a forged
token is refused with `connect_error` whose data code is `unauthorized`.

Node and the npm packages are part of the set-up (`make setup`), so a missing
one fails the test instead of skipping it.
"""

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from server import tokens
from server.roles import Role
from tests.harness import Harness

ROOT = Path(__file__).resolve().parent.parent
WEB_CLIENT = ROOT / "web_client"
SCRIPT = Path(__file__).resolve().parent / "js" / "room_client.mjs"
TIMEOUT_S = 20


def node() -> str:
    found = shutil.which("node")
    assert found, "node is not installed: run `make setup` (Node 20 or later)"
    client = WEB_CLIENT / "node_modules" / "socket.io-client" / "package.json"
    assert client.exists(), "web_client/node_modules is missing: run `make setup` (npm ci)"
    return found


async def run_node(env: dict[str, str]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node(),
        str(SCRIPT),
        env={**os.environ, **env, "WEB_CLIENT": str(WEB_CLIENT), "TIMEOUT_MS": "15000"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT_S):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, (out.decode(), err.decode())
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_js_client_votes_and_sees_the_tallies(server: Harness) -> None:
    await server.create_room(id="js", title="JS room")
    mod = await server.connect("js", "mod", "moderator")
    created = await mod.call("poll:create", {"question": "Which?", "options": ["a", "b", "c"]})
    poll_id = created["poll"]["id"]
    forged = tokens.mint(
        "not-the-server-secret-0123456789abcdef",
        room="js", identity="eve", role=Role.HOST, name="Eve", ttl_s=600, now=time.time(),
    )  # fmt: skip
    result = await run_node(
        {
            "DROPROOM_URL": server.url,
            "TOKEN": server.token("js", "ann", "listener"),
            "POLL_ID": poll_id,
            "OPTION": "2",
            "FORGED": forged,
        }
    )
    assert "error" not in result, result["error"]
    vote = result["vote"]
    assert vote["transport"] == "websocket"
    state = vote["state"]
    assert isinstance(state["server_time"], int | float) and state["server_time"] > 0
    assert state["room"]["id"] == "js" and state["me"]["identity"] == "ann"
    assert vote["ack"]["ok"] is True and vote["ack"]["poll"]["tallies"] == [0, 0, 1]
    assert vote["update"]["poll"]["id"] == poll_id
    assert vote["update"]["poll"]["tallies"] == [0, 0, 1]
    assert vote["update"]["poll"]["state"] == "open"
    refused = result["forged"]
    assert refused["data"]["code"] == "unauthorized"
    assert isinstance(refused["data"]["message"], str) and refused["data"]["message"]
    # The Python moderator saw the same broadcast the JS listener did.
    await mod.wait_for("poll:updated", lambda d: d["poll"]["tallies"] == [0, 0, 1])
