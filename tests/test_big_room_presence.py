"""Presence in large rooms (docs/protocol.md "Presence in large rooms"): above
`DROPROOM_BIG_ROOM` people a plain listener's join or leave reaches the room
only as counts, at most once per `DROPROOM_BIG_ROOM_PRESENCE_S`; notable
people (staff, stage, raised hands) are still named at once, and staff still
get every join and leave. Here a room is large above 3 people, and the
server's clock stands still unless a test moves it, so "once per interval"
is decided by the clock the server reads, not by how fast this machine is."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.appkeys import SCHEDULER
from server.config import Settings
from tests.harness import Client, Harness
from tests.harness import test_settings as make_settings

BIG_ROOM, EVERY_S = 3, 60.0


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", redis_url, big_room=BIG_ROOM, big_room_presence_s=EVERY_S
    )


def hold_clock(server: Harness) -> Callable[[float], None]:
    """Stop the server's clock; the returned function moves it on."""
    now = [time.time()]
    server.app[SCHEDULER].clock = lambda: now[0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    return advance


def named(deltas: list[dict[str, Any]], field: str) -> set[str]:
    found: set[str] = set()
    for d in deltas:
        found.update(p["identity"] if isinstance(p, dict) else p for p in d[field])
    return found


def count_only(d: dict[str, Any]) -> bool:
    return d["joined"] == [] and d["left"] == []


def since(client: Client, mark: int) -> list[dict[str, Any]]:
    return client.received("presence:updated")[mark:]


async def next_delta(client: Client, predicate: Callable[[Any], bool]) -> dict[str, Any]:
    """The first `presence:updated` from now on that matches `predicate`."""
    old = {id(d) for d in client.received("presence:updated")}
    return await client.wait_for("presence:updated", lambda d: id(d) not in old and predicate(d))


async def crowd(server: Harness, room: str, n: int) -> tuple[Client, Client]:
    """The host, an observing listener and fans until `n` people are here;
    returns (host, observer) once the observer's counts say `n`."""
    await server.create_room(id=room)
    host = await server.connect(room, "host", "host")
    watcher = await server.connect(room, "watcher")
    for i in range(n - 2):
        await server.connect(room, f"fan{i}")
    await watcher.wait_for("presence:updated", lambda d: d["counts"]["total"] == n)
    return host, watcher


async def test_a_listener_joining_a_large_room_reaches_others_only_as_counts_once_per_interval(
    server: Harness,
) -> None:
    advance = hold_clock(server)
    host, watcher = await crowd(server, "big", BIG_ROOM + 1)
    mark = len(watcher.received("presence:updated"))

    await server.connect("big", "late")
    # Staff still get the join itself (their audience list offers the stage)...
    staff = await host.wait_for("presence:updated", lambda d: "late" in named([d], "joined"))
    assert staff["counts"]["total"] == BIG_ROOM + 2
    # ...and a moderator arriving after it is named to everyone at once.
    await server.connect("big", "mod", "moderator")
    mod = await watcher.wait_for("presence:updated", lambda d: "mod" in named([d], "joined"))
    assert [p["identity"] for p in mod["joined"]] == ["mod"]
    assert mod["counts"]["total"] == BIG_ROOM + 3
    # The listener's join was flushed before the moderator's, yet the room got
    # no delta for it: the counts had gone out less than an interval before.
    assert since(watcher, mark) == [mod]

    advance(EVERY_S)
    again = await server.connect("big", "later")
    counts = await next_delta(watcher, lambda d: d["counts"]["total"] == BIG_ROOM + 4)
    assert count_only(counts)
    await again.close()  # a plain leave: counts only, once the interval is over
    await host.wait_for("presence:updated", lambda d: "later" in d["left"])
    mark = len(watcher.received("presence:updated"))
    advance(EVERY_S)
    gone = await next_delta(watcher, lambda d: d["counts"]["total"] == BIG_ROOM + 3)
    assert count_only(gone) and since(watcher, mark) == [gone]
    everything = watcher.received("presence:updated")
    assert not {"late", "later"} & (named(everything, "joined") | named(everything, "left"))


async def test_notable_people_in_a_large_room_are_still_named_at_once(server: Harness) -> None:
    hold_clock(server)  # counts went out just now: only notable news may go out
    host, watcher = await crowd(server, "stagebig", BIG_ROOM + 1)
    mark = len(watcher.received("presence:updated"))

    fan = await server.connect("stagebig", "fan", name="Fan")
    await host.wait_for("presence:updated", lambda d: "fan" in named([d], "joined"))
    assert (await fan.call("hand:raise", {}))["ok"]
    hand = await watcher.wait_for("hand:updated")
    assert hand["participant"]["identity"] == "fan"
    assert (await host.call("stage:invite", {"identity": "fan"}))["ok"]
    stage = await watcher.wait_for("stage:updated", lambda d: d["participant"]["on_stage"])
    assert {p["identity"] for p in stage["stage"]} == {"host", "fan"}
    await server.connect("stagebig", "guest", "speaker")
    guest = await watcher.wait_for("presence:updated", lambda d: "guest" in named([d], "joined"))
    assert [p["identity"] for p in guest["joined"]] == ["guest"]

    await fan.close()  # the last connection of someone on stage: named in `left`
    left = await watcher.wait_for("presence:updated", lambda d: "fan" in d["left"])
    assert left["left"] == ["fan"]
    assert left["counts"]["total"] == BIG_ROOM + 2
    # Nothing else reached the room: "fan" joined as a plain listener.
    assert since(watcher, mark) == [guest, left]


async def test_below_the_threshold_every_join_and_leave_is_listed(server: Harness) -> None:
    await server.create_room(id="small")
    host = await server.connect("small", "host", "host")
    watcher = await server.connect("small", "watcher")
    fan = await server.connect("small", "fan")
    joined = await watcher.wait_for("presence:updated", lambda d: "fan" in named([d], "joined"))
    assert joined["counts"] == {"total": BIG_ROOM, "host": 1, "listener": 2}
    await fan.close()
    left = await watcher.wait_for("presence:updated", lambda d: "fan" in d["left"])
    assert left["counts"]["total"] == BIG_ROOM - 1
    # The host heard each once, like everyone (no second, staff-only copy).
    heard = host.received("presence:updated")
    assert sum("fan" in named([d], "joined") for d in heard) == 1
    assert sum("fan" in d["left"] for d in heard) == 1
    # The same join one person past the threshold names nobody to the room.
    host, watcher = await crowd(server, "grown", BIG_ROOM + 1)
    await server.connect("grown", "fan")
    await host.wait_for("presence:updated", lambda d: "fan" in named([d], "joined"))
    await server.connect("grown", "mod", "moderator")
    await watcher.wait_for("presence:updated", lambda d: "mod" in named([d], "joined"))
    assert "fan" not in named(watcher.received("presence:updated"), "joined")


@pytest.mark.parametrize("bad", [{"big_room": 0}, {"big_room_presence_s": 0}])
def test_a_big_room_setting_out_of_range_is_refused_at_start(
    tmp_path: Path, bad: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="DROPROOM_BIG_ROOM"):
        make_settings(tmp_path / "data", None, **bad)
