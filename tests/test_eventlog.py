"""The room's event log: every change appended with the hash of the entry
before it; `droproom log verify` finds the first entry that breaks the chain."""

import asyncio
import os
import sys
from pathlib import Path

from kernel.eventlog import GENESIS, Entry, entry_hash, verify
from rooms import keys
from tests.harness import ADMIN_KEY, SECRET, Harness


def chain(n: int) -> list[Entry]:
    entries, prev = [], GENESIS
    for i in range(n):
        data = f'{{"i":{i}}}'
        h = entry_hash(prev, "t", data, str(i))
        entries.append(Entry(f"{i}-0", "t", data, str(i), prev, h))
        prev = h
    return entries


def test_verify_accepts_a_chain_and_names_the_first_bad_entry() -> None:
    good = chain(5)
    assert verify(good).ok and verify(good).checked == 5
    edited = list(good)
    edited[2] = Entry("2-0", "t", '{"i":99}', "2", good[2].prev, good[2].hash)
    verdict = verify(edited)
    assert not verdict.ok and verdict.bad_entry == "2-0" and verdict.checked == 2
    dropped = good[:1] + good[2:]
    assert verify(dropped).bad_entry == "2-0"


async def test_every_room_change_is_logged_and_the_chain_verifies(server: Harness) -> None:
    await server.create_room(id="lg")
    host = await server.connect("lg", "host", "host")
    fan = await server.connect("lg", "fan")
    poll = (await host.call("poll:create", {"question": "Q", "options": ["a", "b"]}))["poll"]
    await fan.call("poll:vote", {"poll_id": poll["id"], "option": 0})
    await fan.call("hand:raise", {})
    await host.call("stage:invite", {"identity": "fan"})
    await fan.call("chat:send", {"text": "hello"})
    await host.call("poll:close", {"poll_id": poll["id"]})
    store = server.app_rooms_redis()
    rows = await store.xrange(keys.log("lg"))
    types = [fields["type"] for _, fields in rows]
    assert types == [
        "room.created",
        "presence.joined",
        "presence.joined",
        "poll.created",
        "poll.voted",
        "stage.raise",
        "stage.invite",
        "chat.sent",
        "poll.closed",
    ]
    status, verdict = await server.request("GET", "/api/v1/rooms/lg/log/verify", admin=True)
    assert status == 200 and verdict == {"ok": True, "checked": 9, "bad_entry": None, "reason": ""}
    # Someone deletes history behind the server's back: the check names the
    # first entry whose chain no longer holds.
    await store.xdel(keys.log("lg"), rows[4][0])
    status, verdict = await server.request("GET", "/api/v1/rooms/lg/log/verify", admin=True)
    assert verdict["ok"] is False and verdict["bad_entry"] == rows[5][0]
    assert verdict["checked"] == 4


async def test_the_cli_verifies_the_log_of_a_stopped_server(tmp_path: Path) -> None:
    from tests.harness import start_server, stop_server
    from tests.harness import test_settings as make_settings

    settings = make_settings(tmp_path / "data", None)
    harness = await start_server(settings)
    await harness.create_room(id="cli")
    host = await harness.connect("cli", "host", "host")
    await host.call("chat:send", {"text": "one"})
    await stop_server(harness)
    env = {**os.environ, "DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN_KEY}
    env.pop("REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        "log",
        "verify",
        "cli",
        "--data-dir",
        str(settings.data_dir),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, out
    # created, joined, chat, left, and the host leaving the stage
    assert b"ok: 5 entries of room cli" in out
