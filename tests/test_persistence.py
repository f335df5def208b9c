"""Rooms are persistent: a server stopped and started on the same data dir,
with its own embedded Redis, finds every room as it was."""

from pathlib import Path

from tests.harness import start_server, stop_server
from tests.harness import test_settings as make_settings


def _durable(state: dict) -> dict:
    """The parts of a snapshot that must survive a restart."""
    return {
        "room": state["room"],
        "polls": state["polls"],
        "questions": state["questions"],
        "stage": state["stage"],
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
    await stop_server(first)

    second = await start_server(settings.with_(port=settings.port))
    try:
        again = await second.connect("keep", "host", "host")
        after = _durable(again.received("room:state")[0])
        assert after == before
        assert after["polls"][0]["tallies"] == [0, 1]
        assert {p["identity"]: p["muted"] for p in after["stage"]} == {"fan": True, "host": False}
        # Nobody is left "online" from before the restart but the new connection.
        assert again.received("room:state")[0]["counts"]["total"] == 1
        # Votes still count once per identity after the restart.
        fan2 = await second.connect("keep", "fan")
        moved = await fan2.call("poll:vote", {"poll_id": poll["id"], "option": 0})
        assert moved["poll"]["tallies"] == [1, 0]
    finally:
        await stop_server(second)
