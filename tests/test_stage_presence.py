"""Presence and the stage: who is here, raised hands, invitations, mute."""

import jwt

from tests.harness import SECRET, Harness


def code(answer: dict) -> str:
    assert answer["ok"] is False, answer
    return str(answer["error"]["code"])


async def test_joins_and_leaves_arrive_as_coalesced_deltas_with_counts(server: Harness) -> None:
    await server.create_room(id="pr")
    host = await server.connect("pr", "host", "host")
    fans = [await server.connect("pr", f"fan{i}") for i in range(5)]
    seen: set[str] = set()

    def all_joined(d: dict) -> bool:
        # The counts are read when a batch goes out; a join whose delta joins
        # the next batch may already be counted, so wait for both.
        seen.update(p["identity"] for p in d["joined"])
        return d["counts"]["total"] == 6 and {f"fan{i}" for i in range(5)} <= seen

    last = await host.wait_for("presence:updated", all_joined)
    assert {f"fan{i}" for i in range(5)} <= seen
    assert last["counts"] == {"total": 6, "host": 1, "listener": 5}
    joined_updates = host.received("presence:updated")
    assert len(joined_updates) < 5  # five joins, fewer broadcasts
    await fans[0].close()
    gone = await host.wait_for("presence:updated", lambda d: "fan0" in d["left"])
    assert gone["counts"]["total"] == 5


async def test_a_second_tab_of_the_same_identity_is_one_participant(server: Harness) -> None:
    await server.create_room(id="tabs")
    host = await server.connect("tabs", "host", "host")
    one = await server.connect("tabs", "ann")
    two = await server.connect("tabs", "ann")
    await host.wait_for("presence:updated", lambda d: d["counts"]["total"] == 2)
    await one.close()
    probe = await server.connect("tabs", "probe")
    state = probe.received("room:state")[0]
    assert state["counts"]["total"] == 3  # host, ann (still one tab), probe
    await two.close()
    left = await host.wait_for("presence:updated", lambda d: "ann" in d["left"])
    assert left["counts"]["total"] == 2


async def test_hand_invite_mute_remove_is_room_state(server: Harness) -> None:
    await server.create_room(id="st")
    mod = await server.connect("st", "mod", "moderator")
    fan = await server.connect("st", "fan", name="Fan")
    raised = await fan.call("hand:raise", {})
    assert raised["ok"] and raised["participant"]["hand_raised"] is True
    seen = await mod.wait_for("hand:updated")
    assert seen["participant"]["identity"] == "fan"
    invited = await mod.call("stage:invite", {"identity": "fan"})
    assert invited["participant"]["on_stage"] and not invited["participant"]["hand_raised"]
    stage = await fan.wait_for("stage:updated")
    assert [p["identity"] for p in stage["stage"]] == ["fan"]
    # The invited listener gets a speaker token, so WHIP lets them publish.
    upgrade = await fan.wait_for("token:updated")
    claims = jwt.decode(upgrade["token"], SECRET, algorithms=["HS256"])
    assert (claims["role"], claims["sub"], claims["room"]) == ("speaker", "fan", "st")
    assert code(await fan.call("hand:raise", {})) == "conflict"  # already on stage
    muted = await mod.call("speaker:mute", {"identity": "fan", "muted": True})
    assert muted["participant"]["muted"] is True
    assert await mod.wait_for("stage:updated", lambda d: d["participant"]["muted"])
    removed = await mod.call("stage:remove", {"identity": "fan"})
    assert removed["participant"]["on_stage"] is False
    assert code(await mod.call("stage:remove", {"identity": "fan"})) == "conflict"
    assert code(await mod.call("speaker:mute", {"identity": "fan", "muted": True})) == "conflict"
    assert code(await mod.call("stage:invite", {"identity": "ghost"})) == "not_found"
    assert code(await mod.call("speaker:mute", {"identity": "fan", "muted": "yes"})) == "invalid"


async def test_a_moderator_cannot_act_on_the_host(server: Harness) -> None:
    await server.create_room(id="rank")
    host = await server.connect("rank", "host", "host")
    mod = await server.connect("rank", "mod", "moderator")
    assert host.received("room:state")[0]["me"]["on_stage"] is True
    assert code(await mod.call("speaker:mute", {"identity": "host", "muted": True})) == "forbidden"
    assert code(await mod.call("stage:remove", {"identity": "host"})) == "forbidden"
    assert (await host.call("speaker:mute", {"identity": "host", "muted": True}))["ok"]


async def test_stage_listeners_hear_of_every_stage_change(server: Harness) -> None:
    from server.appkeys import STAGE_LISTENERS

    heard: list[tuple[str, str, bool, bool]] = []

    async def listener(room: str, identity: str, on_stage: bool, muted: bool) -> None:
        heard.append((room, identity, on_stage, muted))

    server.app[STAGE_LISTENERS].append(listener)
    await server.create_room(id="hook")
    mod = await server.connect("hook", "mod", "moderator")
    await server.connect("hook", "fan")
    await mod.call("stage:invite", {"identity": "fan"})
    await mod.call("speaker:mute", {"identity": "fan", "muted": True})
    await mod.call("stage:remove", {"identity": "fan"})
    assert heard == [
        ("hook", "fan", True, False),
        ("hook", "fan", True, True),
        ("hook", "fan", False, False),
    ]
