"""A first end-to-end look: connect, get the snapshot, vote."""

from tests.harness import Harness


async def test_connect_gets_room_state_and_a_vote_counts(server: Harness) -> None:
    await server.create_room(id="r1", title="Room one")
    mod = await server.connect("r1", "mod", "moderator")
    state = mod.received("room:state")[0]
    assert state["room"]["id"] == "r1" and state["server_time"] > 0
    ans = await mod.call("poll:create", {"question": "Q?", "options": ["a", "b"]})
    assert ans["ok"], ans
    listener = await server.connect("r1", "l1")
    vote = await listener.call("poll:vote", {"poll_id": ans["poll"]["id"], "option": 1})
    assert vote["ok"] and vote["poll"]["tallies"] == [0, 1]
    update = await mod.wait_for("poll:updated", lambda d: d["poll"]["tallies"] == [0, 1])
    assert update["poll"]["state"] == "open"
