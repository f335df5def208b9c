"""The live room, v2: people who leave leave the stage, speaker tokens that
end with the invitee's own token and with the stage, connections that end
with their token, and hostile input refused quietly. Real Socket.IO clients
against a real server."""

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
import jwt
import pytest
import socketio

from rooms import keys, presence
from server.appkeys import ROOMS, SCHEDULER, STAGE_LISTENERS
from server.config import Settings
from server.rooms.connections import NODE_ID, sweep
from tests.harness import SECRET, Client, Harness, connect, free_port, start_server, stop_server


def code(answer: dict) -> str:
    assert answer["ok"] is False, answer
    return str(answer["error"]["code"])


def on_stage(update: dict) -> list[str]:
    return [p["identity"] for p in update["stage"]]


def left_stage(identity: str) -> Callable[[dict], bool]:
    return lambda d: d["participant"]["identity"] == identity and identity not in on_stage(d)


async def invited(server: Harness, room: str, host: Client, identity: str) -> str:
    """Invite `identity` (connected as a listener); its speaker token."""
    assert (await host.call("stage:invite", {"identity": identity}))["ok"]
    fan = next(c for c in server.clients if _me(c) == identity)
    return str((await fan.wait_for("token:updated"))["token"])


def _me(client: Client) -> str | None:
    states = client.received("room:state")
    return states[0]["me"]["identity"] if states else None


async def refusal(server: Harness, token: str) -> dict:
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[dict] = []
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            server.url, auth={"token": token}, transports=["websocket"], wait_timeout=5
        )
    return errors[0]["data"]


# --- 1. people who leave leave the stage -------------------------------------
async def test_a_speaker_who_leaves_leaves_the_stage(server: Harness) -> None:
    heard: list[tuple[str, str, bool, bool]] = []

    async def audio_path(room: str, identity: str, on_stage: bool, muted: bool) -> None:
        heard.append((room, identity, on_stage, muted))

    server.app[STAGE_LISTENERS].append(audio_path)
    await server.create_room(id="lv")
    host = await server.connect("lv", "host", "host")
    fan = await server.connect("lv", "fan", name="Fan")
    await invited(server, "lv", host, "fan")
    await host.wait_for("stage:updated", lambda d: "fan" in on_stage(d))
    await fan.close()
    update = await host.wait_for(
        "stage:updated",
        left_stage("fan"),
    )
    assert update["participant"]["on_stage"] is False
    assert on_stage(update) == ["host"]
    assert heard[-1] == ("lv", "fan", False, False)  # the audio path drops their voice
    # Whoever joins now sees the stage without them.
    late = await server.connect("lv", "late")
    assert [p["identity"] for p in late.received("room:state")[0]["stage"]] == ["host"]


async def test_a_second_tab_keeps_its_owner_on_stage_until_the_last_closes(
    server: Harness,
) -> None:
    await server.create_room(id="tabs2")
    host = await server.connect("tabs2", "host", "host")
    one = await server.connect("tabs2", "ann")
    two = await server.connect("tabs2", "ann")
    await invited(server, "tabs2", host, "ann")
    await one.close()
    probe = await server.connect("tabs2", "probe")
    assert "ann" in [p["identity"] for p in probe.received("room:state")[0]["stage"]]
    await two.close()
    await host.wait_for("stage:updated", left_stage("ann"))


async def test_a_raised_hand_is_lowered_when_its_owner_leaves(server: Harness) -> None:
    await server.create_room(id="hands")
    mod = await server.connect("hands", "mod", "moderator")
    fan = await server.connect("hands", "fan")
    assert (await fan.call("hand:raise", {}))["ok"]
    await mod.wait_for("hand:updated", lambda d: d["participant"]["hand_raised"])
    await fan.close()
    lowered = await mod.wait_for("hand:updated", lambda d: not d["participant"]["hand_raised"])
    assert lowered["participant"]["identity"] == "fan"
    late = await server.connect("hands", "late")
    state = late.received("room:state")[0]
    assert not [p for p in state["participants"] if p["hand_raised"]]


async def test_the_node_sweep_takes_the_people_of_a_dead_node_off_the_stage(
    server: Harness,
) -> None:
    await server.create_room(id="sw")
    host = await server.connect("sw", "host", "host")
    # A node that died with a speaker connected left this behind in Redis.
    store = server.app[ROOMS]
    field = presence.session_field("deadnode", "sid1")
    await presence.join(store, "sw", field, "ghost", "Ghost", "listener", time.time(), token_exp=0)
    assert (await host.call("stage:invite", {"identity": "ghost"}))["ok"]
    await host.wait_for("stage:updated", lambda d: "ghost" in on_stage(d))
    await sweep(server.app, time.time())
    update = await host.wait_for("stage:updated", left_stage("ghost"))
    assert update["participant"]["on_stage"] is False
    gone = await host.wait_for("presence:updated", lambda d: "ghost" in d["left"])
    assert gone["counts"]["total"] == 1


async def test_a_host_who_comes_back_is_on_stage_again(server: Harness) -> None:
    await server.create_room(id="back")
    host = await server.connect("back", "host", "host")
    fan = await server.connect("back", "fan")
    await host.close()
    await fan.wait_for("stage:updated", lambda d: on_stage(d) == [])
    again = await server.connect("back", "host", "host")
    assert again.received("room:state")[0]["me"]["on_stage"] is True
    await fan.wait_for("stage:updated", lambda d: on_stage(d) == ["host"])
    rows = await server.app_rooms_redis().xrange(keys.log("back"))
    types = [fields["type"] for _, fields in rows]
    assert types[-4:] == ["presence.left", "stage.left", "presence.joined", "stage.returned"]


# --- 2. the speaker token of an invitation -----------------------------------
def claims_of(token: str) -> dict:
    return dict(jwt.decode(token, SECRET, algorithms=["HS256"]))


async def test_the_speaker_token_lives_no_longer_than_the_invitees_own(server: Harness) -> None:
    await server.create_room(id="ttl")
    host = await server.connect("ttl", "host", "host", ttl_s=7 * 24 * 3600)
    short = server.token("ttl", "fan", ttl_s=120)
    fan = await connect(server.url, short)
    server.clients.append(fan)
    await fan.wait_for("room:state")
    token = await invited(server, "ttl", host, "fan")
    assert claims_of(token)["exp"] <= claims_of(short)["exp"]
    # A week-long guest gets at most the server's cap, not the host's week.
    server.clients.append(await connect(server.url, server.token("ttl", "wk", ttl_s=7 * 86400)))
    await server.clients[-1].wait_for("room:state")
    week = await invited(server, "ttl", host, "wk")
    assert claims_of(week)["exp"] - claims_of(week)["iat"] <= 4 * 3600


async def test_stage_remove_revokes_the_speaker_token(server: Harness) -> None:
    await server.create_room(id="rv")
    host = await server.connect("rv", "host", "host")
    await server.connect("rv", "fan")
    token = await invited(server, "rv", host, "fan")
    # While on stage the token connects, as a speaker.
    tab = await connect(server.url, token)
    server.clients.append(tab)
    assert (await tab.wait_for("room:state"))["me"]["role"] == "speaker"
    assert (await host.call("stage:remove", {"identity": "fan"}))["ok"]
    data = await refusal(server, token)
    assert data["code"] == "unauthorized" and "revoked" in data["message"]
    # WHIP refuses it too, even once the same person is invited again.
    assert (await host.call("stage:invite", {"identity": "fan"}))["ok"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.url}/whip/rv",
            data="v=0\r\n",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/sdp"},
        ) as resp,
    ):
        assert resp.status == 401
        assert "revoked" in (await resp.json())["error"]["message"]


async def test_leaving_the_room_revokes_the_speaker_token(server: Harness) -> None:
    await server.create_room(id="rv2")
    host = await server.connect("rv2", "host", "host")
    fan = await server.connect("rv2", "fan")
    token = await invited(server, "rv2", host, "fan")
    await fan.close()
    await host.wait_for("stage:updated", left_stage("fan"))
    assert (await refusal(server, token))["code"] == "unauthorized"


# --- 3. a connection ends with its token -------------------------------------
async def test_a_connection_whose_token_expires_is_told_and_closed(server: Harness) -> None:
    await server.create_room(id="exp")
    host = await server.connect("exp", "host", "host")
    short = await connect(server.url, server.token("exp", "brief", ttl_s=2))
    await short.wait_for("room:state")
    gone = asyncio.Event()
    short.sio.on("disconnect", lambda *_: gone.set())
    expired = await short.wait_for("session:expired", timeout=5)
    assert expired["code"] == "unauthorized"
    await asyncio.wait_for(gone.wait(), 5)
    assert not short.sio.connected
    seen = len(short.events)
    assert (await host.call("chat:send", {"text": "after the end"}))["ok"]
    await host.wait_for("chat:message", lambda d: d["message"]["text"] == "after the end")
    assert short.events[seen:] == []
    await host.wait_for("presence:updated", lambda d: "brief" in d["left"])


# --- 4. hostile input refused quietly ----------------------------------------
async def raw_call(client: Client, body: str) -> dict:
    """Send `body` as the JSON of an event packet, as a client's own encoder
    never would; the server's ack."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[dict] = loop.create_future()
    ack_id = client.sio._generate_ack_id("/", lambda *a: answer.set_result(a[0] if a else {}))
    await client.sio.eio.send(f"2{ack_id}{body}")  # engine.io adds its "4"
    return await asyncio.wait_for(answer, 5)


async def test_unreadable_packets_are_refused_invalid_without_a_traceback(
    server: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    await server.create_room(id="bad")
    fan = await server.connect("bad", "fan")
    caplog.clear()
    caplog.set_level(logging.INFO)
    huge = 10**100  # 101 digits: more than engine.io's JSON reads
    assert code(await fan.call("poll:vote", {"poll_id": "p", "option": huge})) == "invalid"
    for body in (
        '["chat:send",' + "[" * 5000 + "]" * 5000 + "]",  # past the recursion limit
        '["chat:send",{"text":' + '{"a":' * 40 + "1" + "}" * 40 + "}]",  # deeper than 32
        '["qa:ask",{"text":"x","n":' + "9" * 400 + "}]",
    ):
        assert code(await raw_call(fan, body)) == "invalid", body[:40]
    await fan.sio.eio.send("9")  # no such packet type: ignored, quietly
    await fan.sio.eio.send("4{}")  # a refusal is the server's to send
    # The connection is fine, and a payload of ordinary depth still works.
    sent = await fan.call("chat:send", {"text": "still here", "meta": {"a": {"b": [1, [2]]}}})
    assert sent["ok"], sent
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    refusals = [r for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(refusals) == 6 and all(r.levelno <= logging.INFO for r in refusals)


@pytest.mark.parametrize(
    ("event", "text"),
    [
        ("qa:ask", "\u200b"),
        ("chat:send", "\u200b \ufeff"),
        ("chat:send", "\u2060\u200d\u200c"),
        ("qa:ask", " \u3164 \u2800 "),
        ("chat:send", "\u0301\u034f"),
    ],
)
async def test_invisible_text_is_refused(server: Harness, event: str, text: str) -> None:
    await server.create_room(id="blank")
    fan = await server.connect("blank", "fan")
    mod = await server.connect("blank", "mod", "moderator")
    assert code(await fan.call(event, {"text": text})) == "invalid"
    state = (await server.connect("blank", "probe")).received("room:state")[0]
    assert state["questions"] == [] and state["chat"] == []
    assert not mod.received("chat:message") and not mod.received("question:updated")


async def test_visible_text_with_joiners_is_kept_in_nfc(server: Harness) -> None:
    await server.create_room(id="vis")
    fan = await server.connect("vis", "fan")
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert (await fan.call("chat:send", {"text": family}))["message"]["text"] == family
    asked = await fan.call("qa:ask", {"text": " cafe\u0301? "})
    assert asked["question"]["text"] == "caf\u00e9?"


async def test_an_invisible_guest_name_is_refused(server: Harness) -> None:
    await server.create_room(id="gn", guests=True)
    status, body = await server.request(
        "POST", "/api/v1/rooms/gn/guest", json={"name": "\u200b\u200b"}
    )
    assert status == 400 and body["error"]["code"] == "invalid"


async def test_the_sweep_of_a_silent_node_takes_its_speakers_off_the_stage(
    settings: Settings,
) -> None:
    """Two nodes on one Redis: a speaker connected to the second node, which
    stops heartbeating (hung or cut off); the first node's sweep closes its
    connections and the host, on the first node, sees the speaker leave."""
    a = await start_server(settings.with_(multi_node=True))
    b = await start_server(settings.with_(multi_node=True, port=free_port()))
    try:
        await a.create_room(id="nodes")
        host = await a.connect("nodes", "host", "host")
        await b.connect("nodes", "fan")
        assert (await host.call("stage:invite", {"identity": "fan"}))["ok"]
        await host.wait_for("stage:updated", lambda d: "fan" in on_stage(d))
        await b.app[SCHEDULER].stop()  # no more heartbeats from b
        await a.app_rooms_redis().delete(keys.node(b.app[NODE_ID]))  # its key expired
        await sweep(a.app, time.time())
        update = await host.wait_for("stage:updated", left_stage("fan"))
        assert on_stage(update) == ["host"]
        gone = await host.wait_for("presence:updated", lambda d: "fan" in d["left"])
        assert gone["counts"]["total"] == 1
    finally:
        await stop_server(b)
        await stop_server(a)
