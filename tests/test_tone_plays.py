"""What tone plays in a room, kept in Redis (commerce.tone_plays): the key
lasts as long as the tone, a replaced tone is told stopped, a natural end
clears only the tone it names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from commerce import keys
from commerce.tone_plays import TonePlays
from kernel.events import Event
from server.redis_client import connect

ROOM = "r1"


@pytest.fixture
async def plays(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[TonePlays]:
    client = connect(redis_url, cluster=bool(request.config.getoption("--redis-cluster")))
    yield TonePlays(client)
    await client.aclose()


def told(events: list[Event]) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.payload)) for e in events]


async def test_a_tone_is_kept_until_it_ends_and_a_replaced_one_is_told_stopped(
    plays: TonePlays,
) -> None:
    assert await plays.current(ROOM) is None
    first = await plays.started(ROOM, "chime", ends_at=1010.0, now=1000.0)
    assert told(first) == [("tone:playing", {"product_id": "chime", "ends_at": 1010.0})]
    assert await plays.current(ROOM) == {"product_id": "chime", "ends_at": 1010.0}
    ttl = await plays._redis.pttl(keys.tone(ROOM))
    assert 9000 < ttl <= 10000  # it goes with the tone
    second = await plays.started(ROOM, "bell", ends_at=1004.0, now=1001.0)
    assert told(second) == [
        ("tone:stopped", {"product_id": "chime"}),
        ("tone:playing", {"product_id": "bell", "ends_at": 1004.0}),
    ]
    # the replaced tone's end (were it told) leaves the playing one alone
    assert await plays.ended(ROOM, "chime") is None
    assert (await plays.current(ROOM) or {})["product_id"] == "bell"
    ended = await plays.ended(ROOM, "bell")
    assert ended is not None and ended.payload == {"product_id": "bell"}
    assert await plays.current(ROOM) is None
    # stopped: told once; nothing to stop: nothing told
    await plays.started(ROOM, "chime", ends_at=1020.0, now=1010.0)
    stopped = await plays.stopped(ROOM)
    assert stopped is not None and stopped.payload == {"product_id": "chime"}
    assert await plays.stopped(ROOM) is None
    assert await plays.current(ROOM) is None


async def test_a_tone_past_its_end_is_gone_for_late_joiners(plays: TonePlays) -> None:
    await plays.started(ROOM, "chime", ends_at=100.05, now=100.0)
    assert await plays.current(ROOM) is not None
    await asyncio.sleep(0.2)
    assert await plays.current(ROOM) is None
    # its end, told after the key went with its ttl, still tells the room
    ended = await plays.ended(ROOM, "chime")
    assert ended is not None and ended.payload == {"product_id": "chime"}
