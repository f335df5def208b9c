"""The live room over Socket.IO with real clients: connecting, roles,
polls, Q&A, chat, reactions, modules and rate limits."""

import asyncio

import jwt
import pytest
import socketio

from rooms import keys
from tests.harness import Harness


def code(answer: dict) -> str:
    assert answer["ok"] is False, answer
    return str(answer["error"]["code"])


async def refused(server: Harness, token: str) -> dict:
    """The data of the server's refusal, as the client's connect_error sees it."""
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[dict] = []
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            server.url, auth={"token": token}, transports=["websocket"], wait_timeout=5
        )
    assert errors, "the client saw no connect_error"
    return errors[0]["data"]


async def test_connect_sends_the_full_snapshot_with_server_time(server: Harness) -> None:
    await server.create_room(id="s1", title="Snap")
    client = await server.connect("s1", "ann", "moderator", name="Ann")
    state = client.received("room:state")[0]
    assert set(state) >= {
        "room",
        "server_time",
        "participants",
        "stage",
        "polls",
        "slots",
        "drops",
        "questions",
        "me",
    }
    assert state["room"]["title"] == "Snap"
    assert state["me"]["identity"] == "ann" and state["me"]["role"] == "moderator"
    assert [p["identity"] for p in state["participants"]] == ["ann"]


async def test_bad_tokens_are_refused_at_connect_with_unauthorized(server: Harness) -> None:
    await server.create_room(id="s2")
    await server.create_room(id="other")
    forged = jwt.encode(
        {"sub": "x", "room": "s2", "role": "host", "exp": 2**40},
        "a-wrong-secret-of-a-decent-length-00000",
        algorithm="HS256",
    )
    for token in (
        forged,
        server.token("s2", "x", ttl_s=-5),
        "garbage",
        "",
        server.token("no-such-room", "x"),
    ):
        data = await refused(server, token)
        assert data["code"] == "unauthorized", data
    # A token of another room opens that room, never this one.
    other = await server.connect("other", "x")
    assert other.received("room:state")[0]["room"]["id"] == "other"


async def test_a_listener_cannot_create_a_poll_and_nothing_changes(server: Harness) -> None:
    await server.create_room(id="s3")
    listener = await server.connect("s3", "l1")
    log_before = await server.app_rooms_redis().xlen(keys.log("s3"))
    answer = await listener.call("poll:create", {"question": "Q?", "options": ["a", "b"]})
    assert code(answer) == "forbidden"
    for event in (
        "poll:close",
        "qa:answer",
        "stage:invite",
        "stage:remove",
        "speaker:mute",
        "room:update",
    ):
        assert code(await listener.call(event, {})) == "forbidden", event
    fresh = await server.connect("s3", "l2")
    assert fresh.received("room:state")[0]["polls"] == []
    assert await server.app_rooms_redis().xlen(keys.log("s3")) == log_before + 1  # l2 joined


async def test_polls_count_one_vote_per_identity_and_a_revote_moves_it(server: Harness) -> None:
    await server.create_room(id="p1")
    mod = await server.connect("p1", "mod", "moderator")
    poll = (await mod.call("poll:create", {"question": "Best?", "options": ["x", "y", "z"]}))[
        "poll"
    ]
    assert poll["tallies"] == [0, 0, 0] and poll["state"] == "open" and poll["closes_at"] is None
    a = await server.connect("p1", "a")
    b = await server.connect("p1", "b")
    assert (await a.call("poll:vote", {"poll_id": poll["id"], "option": 0}))["poll"]["tallies"] == [
        1,
        0,
        0,
    ]
    await a.call("poll:vote", {"poll_id": poll["id"], "option": 0})
    await b.call("poll:vote", {"poll_id": poll["id"], "option": 2})
    moved = await a.call("poll:vote", {"poll_id": poll["id"], "option": 2})
    assert moved["poll"]["tallies"] == [0, 0, 2]
    seen = await mod.wait_for("poll:updated", lambda d: d["poll"]["tallies"] == [0, 0, 2])
    assert seen["poll"]["id"] == poll["id"]
    closed = await mod.call("poll:close", {"poll_id": poll["id"]})
    assert closed["poll"]["state"] == "closed"
    assert code(await b.call("poll:vote", {"poll_id": poll["id"], "option": 1})) == "conflict"
    assert code(await b.call("poll:vote", {"poll_id": poll["id"], "option": 9})) in (
        "conflict",
        "invalid",
    )


async def test_poll_options_and_payloads_are_validated(server: Harness) -> None:
    await server.create_room(id="p2")
    mod = await server.connect("p2", "mod", "moderator")
    for bad in (
        {"question": "Q", "options": ["only one"]},
        {"question": "Q", "options": [str(i) for i in range(11)]},
        {"question": "Q", "options": ["a", "a"]},
        {"question": "", "options": ["a", "b"]},
        {"question": "Q", "options": ["a", 2]},
        {"question": "Q", "options": ["a", "b"], "duration_s": 0},
        {"question": "Q", "options": ["a", "b"], "duration_s": "10"},
        ["not", "an", "object"],
    ):
        assert code(await mod.call("poll:create", bad)) == "invalid", bad
    poll = (await mod.call("poll:create", {"question": "Q", "options": ["a", "b"]}))["poll"]
    for bad in (
        {"poll_id": poll["id"], "option": 2},
        {"poll_id": poll["id"], "option": -1},
        {"poll_id": poll["id"], "option": True},
        {"poll_id": poll["id"]},
    ):
        assert code(await mod.call("poll:vote", bad)) == "invalid", bad
    assert code(await mod.call("poll:vote", {"poll_id": "nope", "option": 0})) == "not_found"


async def test_a_poll_with_a_duration_closes_by_itself(server: Harness) -> None:
    await server.create_room(id="p3")
    mod = await server.connect("p3", "mod", "moderator")
    poll = (
        await mod.call("poll:create", {"question": "Quick", "options": ["a", "b"], "duration_s": 1})
    )["poll"]
    assert poll["closes_at"] == pytest.approx(poll["created_at"] + 1)
    closed = await mod.wait_for(
        "poll:updated",
        lambda d: d["poll"]["id"] == poll["id"] and d["poll"]["state"] == "closed",
        timeout=5,
    )
    assert closed["poll"]["tallies"] == [0, 0]
    late = await server.connect("p3", "late")
    assert code(await late.call("poll:vote", {"poll_id": poll["id"], "option": 0})) == "conflict"


async def test_a_storm_of_votes_becomes_a_few_tally_broadcasts(server: Harness) -> None:
    await server.create_room(id="p4")
    mod = await server.connect("p4", "mod", "moderator")
    poll = (await mod.call("poll:create", {"question": "Storm", "options": ["a", "b"]}))["poll"]
    voters = [await server.connect("p4", f"v{i}") for i in range(40)]
    answers = await asyncio.gather(
        *(
            v.call("poll:vote", {"poll_id": poll["id"], "option": i % 2})
            for i, v in enumerate(voters)
        )
    )
    assert all(a["ok"] for a in answers)
    final = await mod.wait_for("poll:updated", lambda d: d["poll"]["tallies"] == [20, 20])
    assert final["poll"]["votes"] == 40
    broadcasts = [d for d in mod.received("poll:updated") if d["poll"]["id"] == poll["id"]]
    # Coalesced: 40 votes do not make 40 broadcasts.
    assert 1 <= len(broadcasts) < 10


async def test_questions_take_one_upvote_each_and_rank_by_votes(server: Harness) -> None:
    await server.create_room(id="q1")
    mod = await server.connect("q1", "mod", "moderator")
    a = await server.connect("q1", "a")
    b = await server.connect("q1", "b")
    q1 = (await a.call("qa:ask", {"text": "First?"}))["question"]
    q2 = (await a.call("qa:ask", {"text": "Second?"}))["question"]
    assert q1["votes"] == 0 and q1["answered"] is False and q1["author"] == "a"
    assert (await b.call("qa:upvote", {"question_id": q2["id"]}))["question"]["votes"] == 1
    assert code(await b.call("qa:upvote", {"question_id": q2["id"]})) == "conflict"
    await a.call("qa:upvote", {"question_id": q2["id"]})
    answered = await mod.call("qa:answer", {"question_id": q1["id"]})
    assert answered["question"]["answered"] is True
    seen = await b.wait_for("question:updated", lambda d: d["question"]["answered"])
    assert seen["question"]["id"] == q1["id"]
    late = await server.connect("q1", "late")
    ranked = late.received("room:state")[0]["questions"]
    assert [(q["id"], q["votes"]) for q in ranked] == [(q2["id"], 2), (q1["id"], 0)]
    assert code(await a.call("qa:ask", {"text": "x" * 301})) == "invalid"
    assert code(await a.call("qa:upvote", {"question_id": "missing"})) == "not_found"


async def test_chat_keeps_recent_messages_for_late_joiners(server: Harness) -> None:
    await server.create_room(id="c1")
    a = await server.connect("c1", "a", name="Ann")
    b = await server.connect("c1", "b")
    sent = await a.call("chat:send", {"text": "  hello room  "})
    assert sent["message"]["text"] == "hello room" and sent["message"]["author_name"] == "Ann"
    got = await b.wait_for("chat:message")
    assert got["message"]["id"] == sent["message"]["id"]
    assert code(await a.call("chat:send", {"text": "x" * 501})) == "invalid"
    assert code(await a.call("chat:send", {"text": ""})) == "invalid"
    late = await server.connect("c1", "late")
    assert [m["text"] for m in late.received("room:state")[0]["chat"]] == ["hello room"]


async def test_reactions_reach_the_room_and_are_not_stored(server: Harness) -> None:
    await server.create_room(id="c2")
    a = await server.connect("c2", "a")
    b = await server.connect("c2", "b")
    assert (await a.call("reaction:send", {"emoji": "🔥"}))["ok"]
    got = await b.wait_for("reaction")
    assert got["emoji"] == "🔥" and got["identity"] == "a"
    assert code(await a.call("reaction:send", {"emoji": "<script>"})) == "invalid"
    redis = server.app_rooms_redis()
    stored = [k for k in await redis.keys(keys.tag("c2") + "*") if ":rl:" not in k]
    assert not [k for k in stored if "reaction" in k or k.endswith(":chat")]


async def test_chat_is_rate_limited_per_identity(server: Harness) -> None:
    await server.create_room(id="c3")
    a = await server.connect("c3", "a")
    b = await server.connect("c3", "b")
    answers = [await a.call("chat:send", {"text": f"m{i}"}) for i in range(7)]
    assert [x["ok"] for x in answers] == [True] * 5 + [False] * 2
    assert code(answers[-1]) == "rate_limited"
    assert (await b.call("chat:send", {"text": "still me"}))["ok"]


async def test_a_module_that_is_off_answers_conflict(server: Harness) -> None:
    await server.create_room(id="m1", modules=["polls"])
    host = await server.connect("m1", "host", "host")
    a = await server.connect("m1", "a")
    assert code(await a.call("chat:send", {"text": "hi"})) == "conflict"
    assert code(await a.call("qa:ask", {"text": "hi?"})) == "conflict"
    changed = await host.call("room:update", {"modules": ["polls", "chat"]})
    assert changed["room"]["modules"] == ["polls", "chat"]
    await a.wait_for("room:updated")
    assert (await a.call("chat:send", {"text": "hi"}))["ok"]
    assert code(await host.call("room:update", {"modules": ["nope"]})) == "invalid"


async def test_unknown_payload_shapes_never_crash_a_handler(server: Harness) -> None:
    await server.create_room(id="m2")
    a = await server.connect("m2", "a", "host")
    for payload in (None, 5, "str", [1], {"text": None}, {"text": {"nested": 1}}):
        answer = await a.call("chat:send", payload)
        assert answer["ok"] is False and answer["error"]["code"] == "invalid", payload
    assert (await a.call("chat:send", {"text": "alive"}))["ok"]


async def test_reactions_votes_and_questions_are_rate_limited(server: Harness) -> None:
    await server.create_room(id="c4")
    mod = await server.connect("c4", "mod", "moderator")
    poll = (await mod.call("poll:create", {"question": "Q", "options": ["a", "b"]}))["poll"]
    a = await server.connect("c4", "a")
    bursts = {
        "reaction:send": ({"emoji": "👏"}, 10),
        "poll:vote": ({"poll_id": poll["id"], "option": 0}, 10),
        "qa:ask": ({"text": "why?"}, 3),
    }
    for event, (payload, allowed) in bursts.items():
        answers = [await a.call(event, payload) for _ in range(allowed + 1)]
        assert all(x["ok"] for x in answers[:allowed]), event
        assert code(answers[-1]) == "rate_limited", event
    # Refused questions were not stored.
    late = await server.connect("c4", "late")
    assert len(late.received("room:state")[0]["questions"]) == 3
