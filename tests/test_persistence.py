"""Rooms are persistent: a server stopped and started on the same data dir,
with its own embedded Redis, finds every room as it was."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.harness import ADMIN_KEY, SECRET, free_port, start_server, stop_server
from tests.harness import test_settings as make_settings


def _durable(state: dict) -> dict:
    """The parts of a snapshot that must survive a restart."""
    return {
        "room": state["room"],
        "polls": state["polls"],
        "questions": state["questions"],
        "chat": state["chat"],
        "me": {k: v for k, v in state["me"].items() if k != "token_expires_at"},
    }


async def test_a_room_survives_a_server_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None)  # embedded Redis, owned by the app
    first = await start_server(settings)
    await first.create_room(id="keep", title="Keeps", guests=True)
    host = await first.connect("keep", "host", "host")
    fan = await first.connect("keep", "fan")
    poll = (await host.call("poll:create", {"question": "Q", "options": ["a", "b"]}))["poll"]
    await fan.call("poll:vote", {"poll_id": poll["id"], "option": 1})
    question = (await fan.call("qa:ask", {"text": "Will it last?"}))["question"]
    await host.call("qa:upvote", {"question_id": question["id"]})
    await host.call("stage:invite", {"identity": "fan"})
    await host.call("speaker:mute", {"identity": "fan", "muted": True})
    await fan.call("chat:send", {"text": "see you after the restart"})
    await host.call("room:update", {"live": True})
    probe = await first.connect("keep", "host", "host")
    before = _durable(probe.received("room:state")[0])
    stage_before = probe.received("room:state")[0]["stage"]
    await stop_server(first)

    second = await start_server(settings.with_(port=settings.port))
    try:
        again = await second.connect("keep", "host", "host")
        after = _durable(again.received("room:state")[0])
        assert after == before
        assert after["polls"][0]["tallies"] == [0, 1]
        # Everyone left with the old server, so they left its stage; the host
        # is back on it by coming back (PROTOCOL v2: people who leave leave the stage).
        assert [p["identity"] for p in stage_before if p["muted"]] == ["fan"]
        assert [p["identity"] for p in again.received("room:state")[0]["stage"]] == ["host"]
        # Nobody is left "online" from before the restart but the new connection.
        assert again.received("room:state")[0]["counts"]["total"] == 1
        # Votes still count once per identity after the restart.
        fan2 = await second.connect("keep", "fan")
        moved = await fan2.call("poll:vote", {"poll_id": poll["id"], "option": 0})
        assert moved["poll"]["tallies"] == [1, 0]
    finally:
        await stop_server(second)


async def test_a_killed_servers_embedded_redis_is_adopted_then_stopped(tmp_path: Path) -> None:
    """SIGKILL leaves the embedded redis-server running; the next server on the
    same data dir uses it (nothing lost) and stops it when it ends."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DROPROOM_", "REDIS_"))}
    env.update({"DROPROOM_SECRET": SECRET, "DROPROOM_ADMIN_KEY": ADMIN_KEY})

    async def serve() -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--workers",
            "1",
            "--port",
            str(free_port()),
            "--data-dir",
            str(data),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            while b"listening" not in (line := await proc.stdout.readline()):
                if not line:
                    raise RuntimeError("the server exited before listening")
        return proc

    first = await serve()
    redis_pid = int((data / "redis" / "redis.pid").read_text())
    first.kill()
    await first.wait()
    os.kill(redis_pid, 0)  # still running: it was in its own session
    second = await serve()
    assert int((data / "redis" / "redis.pid").read_text()) == redis_pid  # adopted, not a second
    second.terminate()
    await asyncio.wait_for(second.wait(), 30)
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(redis_pid, 0)
            await asyncio.sleep(0.1)
