"""The room's media lease: one owner per room, a fencing token that only
grows, taken over when the holder stops renewing."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from rooms import keys, media_lease
from rooms.store import RoomStore
from server.redis_client import connect


@pytest.fixture
async def store(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[RoomStore]:
    cluster = bool(request.config.getoption("--redis-cluster"))
    client = connect(redis_url, cluster=cluster, decode_responses=True)
    await client.exists(keys.NODES)
    yield RoomStore(client)
    await client.aclose()


async def test_one_process_owns_a_rooms_media_and_the_other_sees_where(store: RoomStore) -> None:
    first = await media_lease.hold(store, "lease-a", "p1", {"worker": "w1"})
    second = await media_lease.hold(store, "lease-a", "p2", {"worker": "w2"})
    assert first.held and not second.held
    assert second.holder == "p1" and second.endpoint == {"worker": "w1"}
    assert second.token == first.token
    renewed = await media_lease.hold(store, "lease-a", "p1", {"worker": "w1"})
    assert renewed.held and renewed.token == first.token
    seen = await media_lease.current(store, "lease-a")
    assert seen is not None and seen.holder == "p1" and not seen.held


async def test_a_lapsed_lease_moves_with_a_higher_fencing_token(store: RoomStore) -> None:
    first = await media_lease.hold(store, "lease-b", "p1", {}, ttl_s=0.05)
    await asyncio.sleep(0.1)
    assert await media_lease.current(store, "lease-b") is None
    taken = await media_lease.hold(store, "lease-b", "p2", {"worker": "w2"})
    assert taken.held and taken.token > first.token
    # the old holder comes back: it does not get the room again
    back = await media_lease.hold(store, "lease-b", "p1", {})
    assert not back.held and back.holder == "p2"


async def test_only_the_holder_with_its_token_gives_the_lease_up(store: RoomStore) -> None:
    first = await media_lease.hold(store, "lease-c", "p1", {})
    assert not await media_lease.give_up(store, "lease-c", "p2", first.token)
    assert not await media_lease.give_up(store, "lease-c", "p1", first.token - 1)
    assert await media_lease.give_up(store, "lease-c", "p1", first.token)
    again = await media_lease.hold(store, "lease-c", "p2", {})
    assert again.held and again.token == first.token + 1
