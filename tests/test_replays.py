"""Shoppable replays: the moments of a recording (a table of log entries and
windows through the pure `rooms.moments`), the log read bounded by time,
and `GET /api/v1/rooms/{room}/replays` after a real recording (an aiortc
peer publishing over WHIP) with a pin, a drop and a poll made during it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from kernel.eventlog import Entry
from media.packets import FRAME_SAMPLES, OPUS_SILENCE, SharedPacket
from media.recording import HEARTBEAT_PACKETS, STALE_S, Recorder, list_replays
from rooms.moments import Moment, MomentType, Window, moment_view, moments
from server.appkeys import ROOMS
from tests.harness import Client, Harness
from tests.media_helpers import TonePublisher, wait_connected
from tests.test_media_http import Signal

ROOM = "replayed"
TEE = {"id": "tee", "title": "Tour tee", "price": 499, "currency": "usd", "kind": "physical"}
WINDOW = Window(opened_at=1000.0, audio_at=1000.5, end=1060.0)


def entry(etype: str, ts: float, **data: Any) -> Entry:
    return Entry(f"{int(ts * 1000)}-0", etype, json.dumps(data), repr(ts), "", "")


PIN = entry("slot.pinned", 1010.5, product_id="tee", note="Signed", slot=1)
POLL = entry("poll.created", 1020.5, id="p1", question="Colour?", options=["Black", "Sand"])
SCHEDULED = entry("drop.scheduled", 1030.5, drop_id="d1", product_id="tee", stock=3)
LIVE = entry("drop.live", 1030.5, drop_id="d1", remaining=3, stock=3)

MOMENT_CASES: list[tuple[str, list[Entry], Window, list[tuple[float, str]]]] = [
    ("nothing logged", [], WINDOW, []),
    ("a pin at its offset from the first audio", [PIN], WINDOW, [(10.0, "pin")]),
    ("a poll", [POLL], WINDOW, [(20.0, "poll")]),
    ("a drop is one moment, scheduled and live", [SCHEDULED, LIVE], WINDOW, [(30.0, "drop")]),
    (
        "a drop scheduled before, live during",
        [
            entry("drop.scheduled", 990.0, drop_id="d1", product_id="tee"),
            entry("drop.live", 1040.5, drop_id="d1"),
        ],
        WINDOW,
        [(40.0, "drop")],
    ),
    ("before the recording opened", [entry("slot.pinned", 999.9, product_id="tee")], WINDOW, []),
    ("after it ended", [entry("poll.created", 1060.1, id="p9", question="?")], WINDOW, []),
    (
        "between the opening and the first audio: at 0",
        [entry("slot.pinned", 1000.2, product_id="tee")],
        WINDOW,
        [(0.0, "pin")],
    ),
    (
        "other entries are no moments",
        [
            entry("chat.sent", 1010.0, text="hi"),
            entry("poll.voted", 1011.0, poll="p1"),
            entry("slot.unpinned", 1012.0, slot=1),
            entry("drop.ended", 1013.0, drop_id="d1"),
            entry("drop.sold_out", 1014.0, drop_id="d1"),
        ],
        WINDOW,
        [],
    ),
    (
        "by offset, each pin its own moment",
        [POLL, PIN, entry("slot.pinned", 1015.5, product_id="tee", slot=2)],
        WINDOW,
        [(10.0, "pin"), (15.0, "pin"), (20.0, "poll")],
    ),
    (
        "unreadable entries are skipped",
        [
            Entry("1-0", "slot.pinned", "not json", "1010", "", ""),
            Entry("1-1", "slot.pinned", "{}", "1010", "", ""),
            Entry("1-2", "poll.created", "[1]", "1010", "", ""),
            Entry("1-3", "slot.pinned", '{"product_id":"tee"}', "soon", "", ""),
        ],
        WINDOW,
        [],
    ),
]


@pytest.mark.parametrize(
    ("entries", "window", "expected"),
    [case[1:] for case in MOMENT_CASES],
    ids=[case[0] for case in MOMENT_CASES],
)
def test_moments_of_log_entries(
    entries: list[Entry], window: Window, expected: list[tuple[float, str]]
) -> None:
    assert [(m.t, str(m.type)) for m in moments(entries, window)] == expected


PRODUCTS = {"tee": {**TEE, "stock": 20}}
DROPS = {
    "d1": {
        "id": "d1",
        "product_id": "tee",
        "state": "ended",
        "starts_at": 1030.0,
        "ends_at": 1090.0,
        "remaining": 2,
        "price": 299,
        "currency": "usd",
    }
}
VIEW_CASES: list[tuple[str, Moment, dict[str, Any] | None]] = [
    (
        "a pin names its product, title and price",
        Moment(10.0, MomentType.PIN, {"product_id": "tee", "slot": 1, "note": "Signed"}),
        {
            "t": 10.0,
            "type": "pin",
            "product_id": "tee",
            "slot": 1,
            "note": "Signed",
            "title": "Tour tee",
            "price": 499,
            "currency": "usd",
            "kind": "physical",
        },
    ),
    (
        "a drop sells at its own price and says its state now",
        Moment(30.0, MomentType.DROP, {"drop_id": "d1"}),
        {
            "t": 30.0,
            "type": "drop",
            "drop_id": "d1",
            "product_id": "tee",
            "state": "ended",
            "starts_at": 1030.0,
            "ends_at": 1090.0,
            "remaining": 2,
            "title": "Tour tee",
            "price": 299,
            "currency": "usd",
            "kind": "physical",
        },
    ),
    (
        "a poll needs nothing more",
        Moment(20.0, MomentType.POLL, {"poll_id": "p1", "question": "Colour?", "options": []}),
        {"t": 20.0, "type": "poll", "poll_id": "p1", "question": "Colour?", "options": []},
    ),
    ("a product gone", Moment(1.0, MomentType.PIN, {"product_id": "gone"}), None),
    ("a drop gone", Moment(1.0, MomentType.DROP, {"drop_id": "d9"}), None),
]


@pytest.mark.parametrize(
    ("moment", "expected"), [c[1:] for c in VIEW_CASES], ids=[c[0] for c in VIEW_CASES]
)
def test_moment_view(moment: Moment, expected: dict[str, Any] | None) -> None:
    assert moment_view(moment, PRODUCTS, DROPS) == expected


def test_the_recorder_keeps_the_time_of_its_first_audio(tmp_path: Path) -> None:
    """Offset 0 of the file is its first packet, not the recorder's opening:
    the sidecar says when that was, and replays place moments from it."""
    times = iter([100.0, 101.25, 105.0])
    recorder = Recorder(tmp_path, "r1", clock=lambda: next(times))
    (opened,) = list_replays(tmp_path, "r1")
    assert opened.live and opened.audio_at is None and opened.zero_at == 100.0
    for i in range(50):  # one second of silence
        recorder.write(SharedPacket(OPUS_SILENCE, i * FRAME_SAMPLES, 0.0))
    (writing,) = list_replays(tmp_path, "r1")
    assert writing.audio_at == 101.25 and writing.zero_at == 101.25
    closed = recorder.close()
    assert closed.ended_at == 105.0 and closed.duration_s == 1.0 and not closed.live
    assert list_replays(tmp_path, "r1") == [closed]


def test_a_recording_left_open_is_listed_as_ended(tmp_path: Path) -> None:
    """A process that ended mid-recording left a sidecar saying live: once it
    is older than STALE_S (a live recorder rewrites it every 20 s of audio)
    it lists as ended when its files last changed."""
    recorder = Recorder(tmp_path, "r1", now=1000.0, clock=lambda: 1000.0)
    sidecar = recorder.path.with_suffix(".json")
    for i in range(HEARTBEAT_PACKETS - 1):
        recorder.write(SharedPacket(OPUS_SILENCE, i * FRAME_SAMPLES, 0.0))
    os.utime(sidecar, (1010.0, 1010.0))
    os.utime(recorder.path, (1030.0, 1030.0))
    (left,) = list_replays(tmp_path, "r1", now=1030.0 + STALE_S)
    assert not left.live and left.ended_at == 1030.0 and left.duration_s == 30.0
    assert list_replays(tmp_path, "r1", now=1010.0 + STALE_S - 1)[0].live  # not yet
    recorder.write(SharedPacket(OPUS_SILENCE, HEARTBEAT_PACKETS * FRAME_SAMPLES, 0.0))
    assert sidecar.stat().st_mtime > 1010.0  # the heartbeat rewrote it
    (alive,) = list_replays(tmp_path, "r1", now=time.time())
    assert alive.live and alive.ended_at is None
    recorder.close()


async def test_log_between_reads_only_the_window(server: Harness) -> None:
    await server.create_room(id=ROOM, title="Replayed")
    mod = await server.connect(ROOM, "mo", "moderator")
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    await asyncio.sleep(0.05)
    t0 = time.time()
    await asyncio.sleep(0.05)
    assert (await mod.call("slot:pin", {"slot": 1, "product_id": "tee"}))["ok"]
    await asyncio.sleep(0.05)
    t1 = time.time()
    await asyncio.sleep(0.05)
    assert (await mod.call("chat:send", {"text": "after"}))["ok"]
    store = server.app[ROOMS]
    inside = [e.type async for e in store.log_between(ROOM, t0, t1)]
    assert inside == ["slot.pinned"]
    everything = [e.type async for e in store.log_entries(ROOM)]
    assert {"room.created", "presence.joined", "slot.pinned", "chat.sent"} <= set(everything)
    assert [e.type async for e in store.log_between(ROOM, t0, t1, batch=1)] == inside


# --- the route after a real recording -------------------------------------
Action = Callable[[Client], Awaitable[Any]]


async def record(server: Harness, room: str, actions: dict[str, Action]) -> dict[str, float]:
    """Publish a tone over WHIP (a real aiortc peer) for about a second more
    than there are actions, the moderator doing one action a second from
    the first second on. Returns the wall time of each action by name."""
    mod = await server.connect(room, "mo", "moderator")
    sig = Signal(server, "whip", server.token(room, "hostess", "host"), room=room)
    pub = await TonePublisher.start(440, sig)
    await wait_connected(pub.pc)
    done: dict[str, float] = {}
    for name, action in actions.items():
        await asyncio.sleep(1.0)
        done[name] = time.time()
        answer = await action(mod)
        assert answer["ok"], (name, answer)
    await asyncio.sleep(1.5)
    assert await sig.request("DELETE") == 200
    await pub.close()
    return done


def pin(product_id: str, slot: int = 1, note: str = "") -> Action:
    return lambda mod: mod.call("slot:pin", {"slot": slot, "product_id": product_id, "note": note})


def drop(product_id: str, length_s: float, stock: int = 3) -> Action:
    def schedule(mod: Client) -> Awaitable[Any]:
        now = time.time()
        window = {"starts_at": now, "ends_at": now + length_s}
        return mod.call("drop:schedule", {"product_id": product_id, **window, "stock": stock})

    return schedule


def poll(question: str, options: list[str]) -> Action:
    return lambda mod: mod.call("poll:create", {"question": question, "options": options})


async def _record_with_moments(server: Harness) -> dict[str, float]:
    """Pin at ~1 s, a drop at ~2 s, a poll at ~3 s of a ~4.5 s recording;
    another pin after it ended (no moment)."""
    await server.create_room(id=ROOM, title="Replayed", guests=True)
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    actions = {
        "pin": pin("tee", note="Signed"),
        "drop": drop("tee", 600),
        "poll": poll("Which colour next?", ["Black", "Sand"]),
    }
    done = await record(server, ROOM, actions)
    await asyncio.sleep(0.2)
    mod = await server.connect(ROOM, "mo2", "moderator")
    assert (await mod.call("slot:pin", {"slot": 2, "product_id": "tee"}))["ok"]
    return done


async def test_replays_list_the_moments_of_a_real_recording(server: Harness) -> None:
    done = await _record_with_moments(server)
    token = server.token(ROOM, "lara", "listener")
    status, body = await server.request("GET", f"/api/v1/rooms/{ROOM}/replays", token=token)
    assert status == 200, body
    (replay,) = body["replays"]
    assert replay["id"].endswith(".ogg") and not replay["live"]
    assert 3.5 < replay["duration_s"] < 7.0
    started = replay["started_at"]
    assert done["pin"] - 2.0 < started < done["pin"]
    pin, drop, poll = replay["moments"]
    assert pin["type"] == "pin" and drop["type"] == "drop" and poll["type"] == "poll"
    for moment in (pin, drop, poll):
        # the offset into the audio matches when the change was made
        assert moment["t"] == pytest.approx(done[moment["type"]] - started, abs=0.3)
        assert 0 < moment["t"] < replay["duration_s"]
    assert pin | {"t": 0} == {
        "t": 0,
        "type": "pin",
        "product_id": "tee",
        "slot": 1,
        "note": "Signed",
        "title": "Tour tee",
        "price": 499,
        "currency": "usd",
        "kind": "physical",
    }
    assert drop["product_id"] == "tee" and drop["title"] == "Tour tee"
    assert drop["state"] == "live" and drop["remaining"] == 3 and drop["drop_id"]
    assert drop["price"] == 499 and drop["currency"] == "usd"
    assert poll["poll_id"] and poll["question"] == "Which colour next?"
    assert poll["options"] == ["Black", "Sand"]

    # the url is absolute and plays without a header, with range requests
    url = replay["url"]
    assert url.startswith(server.url + f"/api/v1/rooms/{ROOM}/replays/{replay['id']}?")
    assert "token=" not in url
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Range": "bytes=0-99"}) as r:
            assert r.status == 206 and r.headers["Content-Type"] == "audio/ogg"
            head = await r.read()
            assert head[:4] == b"OggS" and len(head) == 100
        tampered = url.replace("sig=", "sig=0")
        async with http.get(tampered) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "forbidden"
        parts = urlsplit(url)
        async with http.get(f"{server.url}{parts.path}") as r:
            assert r.status == 401  # no signature, no token
        async with http.get(f"{server.url}{parts.path}?token={token}") as r:
            assert r.status == 200  # a room token still opens it
        other = url.replace(f"/rooms/{ROOM}/", "/rooms/elsewhere/")
        async with http.get(other) as r:
            assert r.status == 403  # signed for this room only


async def test_replays_need_a_token_of_the_room(server: Harness) -> None:
    await server.create_room(id=ROOM, title="Replayed")
    await server.create_room(id="elsewhere", title="Elsewhere")
    path = f"/api/v1/rooms/{ROOM}/replays"
    status, body = await server.request("GET", path)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    wrong = server.token("elsewhere", "lara", "listener")
    assert (await server.request("GET", path, token=wrong))[0] == 401
    ok = await server.request("GET", path, token=server.token(ROOM, "lara", "listener"))
    assert ok == (200, {"replays": []})


async def test_a_recording_still_live_lists_its_moments_so_far(server: Harness) -> None:
    await server.create_room(id=ROOM, title="Replayed")
    await server.admin_post("/api/v1/products", {**TEE, "stock": 20})
    mod = await server.connect(ROOM, "mo", "moderator")
    sig = Signal(server, "whip", server.token(ROOM, "hostess", "host"), room=ROOM)
    pub = await TonePublisher.start(440, sig)
    await wait_connected(pub.pc)
    await asyncio.sleep(0.5)
    assert (await pin("tee")(mod))["ok"]
    await asyncio.sleep(0.5)
    token = server.token(ROOM, "lara", "listener")
    status, body = await server.request("GET", f"/api/v1/rooms/{ROOM}/replays", token=token)
    assert await sig.request("DELETE") == 200
    await pub.close()
    assert status == 200, body
    (replay,) = body["replays"]
    assert replay["live"] and replay["ended_at"] is None
    assert 0.5 < replay["duration_s"] < 3.0  # recorded so far
    (moment,) = replay["moments"]
    assert moment["type"] == "pin" and 0 < moment["t"] < replay["duration_s"]
