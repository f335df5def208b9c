"""Rules of the room domain decided once: the Lua rank table is the `Role`
enum written out, a poll is open by the same rule in Lua and in Python, who
may publish is one predicate, and the caps that race (open polls, guest
tokens) are checked inside the script that writes."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.errors import Conflict, RateLimited
from kernel.lua import source
from rooms import events as room_events
from rooms import keys, lifecycle, limits, polls, presence
from rooms.model import Participant, Poll
from rooms.roles import Role, can_publish, lua_ranks
from rooms.store import RoomStore
from server.redis_client import connect


@pytest.fixture
async def store(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[RoomStore]:
    cluster = bool(request.config.getoption("--redis-cluster"))
    client = connect(redis_url, cluster=cluster, decode_responses=True)
    # Warm up: redis-py's cluster client finds its nodes on its first command,
    # and concurrent first commands may then be sent twice.
    await client.exists(keys.NODES)
    yield RoomStore(client)
    await client.aclose()


def test_the_lua_rank_table_is_the_role_enum_written_out() -> None:
    ranks = Path(__file__).parent.parent / "rooms" / "lua" / "ranks.lua"
    assert ranks.read_text(encoding="utf-8") == lua_ranks(), "run python -m rooms.roles"


async def test_redis_ranks_every_role_as_python_does(store: RoomStore) -> None:
    script = store.redis.register_script(
        source("rooms/ranks") + "local out = {} for i, label in ipairs(ARGV) do "
        "out[i] = RANK[label] end return out"
    )
    labels = [role.label for role in Role]
    assert await script(keys=[keys.room("ranks")], args=labels) == [int(r) for r in Role]


CASES = [
    ("open", "", 100.0),
    ("open", "150.5", 150.4),
    ("open", "150.5", 150.5),
    ("open", "150.5", 200.0),
    ("closed", "", 100.0),
    ("closed", "150.5", 100.0),
]


@pytest.mark.parametrize(("state", "closes_at", "now"), CASES)
async def test_a_poll_is_open_by_the_same_rule_in_lua_and_python(
    store: RoomStore, state: str, closes_at: str, now: float
) -> None:
    key = keys.poll("r", "p")
    fields = {"id": "p", "question": "q", "options": '["a","b"]', "n": 2, "t0": 0, "t1": 0}
    await store.redis.hset(
        key, mapping={**fields, "state": state, "closes_at": closes_at, "created_at": 1}
    )
    script = store.redis.register_script(
        source("rooms/poll_is_open") + "return poll_is_open(KEYS[1], ARGV[1]) and 1 or 0"
    )
    in_lua = await script(keys=[key], args=[repr(now)]) == 1
    in_python = Poll.from_hash(await store.redis.hgetall(key)).state(now) == "open"
    assert in_lua == in_python


def test_who_may_publish() -> None:
    on = Participant(identity="a", name="A", role="speaker", on_stage=True)
    off = Participant(identity="a", name="A", role="speaker", on_stage=False)
    assert can_publish(Role.HOST, None) and can_publish(Role.HOST, off)
    assert can_publish(Role.SPEAKER, on) and can_publish(Role.MODERATOR, on)
    assert not can_publish(Role.SPEAKER, off) and not can_publish(Role.MODERATOR, None)
    assert not can_publish(Role.LISTENER, on)


async def test_concurrent_poll_creates_never_pass_the_open_poll_cap(store: RoomStore) -> None:
    await lifecycle.create(store, {"id": "cap", "title": "t"}, now=0.0)
    draft = polls.PollDraft("q?", ("a", "b"), None)
    tries = polls.MAX_OPEN_POLLS + 10
    results = await asyncio.gather(
        *(polls.create(store, "cap", draft, now=1.0) for _ in range(tries)),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == polls.MAX_OPEN_POLLS
    assert all(isinstance(r, Conflict) for r in refused) and len(refused) == 10
    assert await store.redis.llen(keys.polls("cap")) == polls.MAX_OPEN_POLLS


async def test_a_closed_poll_frees_its_place_under_the_cap(store: RoomStore) -> None:
    await lifecycle.create(store, {"id": "cap", "title": "t"}, now=0.0)
    draft = polls.PollDraft("q?", ("a", "b"), None)
    made = [(await polls.create(store, "cap", draft, now=1.0))[0] for _ in range(20)]
    with pytest.raises(Conflict, match="at most 20 polls"):
        await polls.create(store, "cap", draft, now=1.0)
    await polls.close(store, "cap", made[0].id, now=2.0, by="host")
    await polls.create(store, "cap", draft, now=3.0)


async def test_concurrent_guest_tokens_never_pass_the_limit(store: RoomStore) -> None:
    cap = limits.GUEST_TOKENS.count
    results = await asyncio.gather(
        *(limits.check_guest(store, "10.0.0.1") for _ in range(cap + 5)),
        return_exceptions=True,
    )
    assert [r for r in results if r is None] == [None] * cap
    assert all(isinstance(r, RateLimited) for r in results if r is not None)
    # The counter carries its window from its first count (one script).
    ttl_ms = await store.redis.pttl(keys.guest_rate("10.0.0.1"))
    assert 0 < ttl_ms <= limits.GUEST_TOKENS.window_s * 1000


async def test_a_sweep_closes_the_connections_of_nodes_without_a_heartbeat(
    store: RoomStore,
) -> None:
    await lifecycle.create(store, {"id": "nodes", "title": "t"}, now=0.0)
    for node, who in (("alive", "ann"), ("dead", "bob")):
        await presence.heartbeat(store, node, now=1.0)
        field = presence.session_field(node, "sid-" + who)
        await presence.join(store, "nodes", field, who, who, "listener", 1.0, token_exp=99.0)
    await presence.node_gone(store, "dead")
    closed = await presence.sweep(store, now=2.0)
    assert [(room, gone.identity, gone.left) for room, gone in closed] == [("nodes", "bob", True)]
    assert await store.is_online("nodes", "ann") and not await store.is_online("nodes", "bob")
    assert await store.redis.smembers(keys.NODES) == {"alive"}
    # A node closing down sweeps its own connections too.
    assert [gone.identity for _, gone in await presence.sweep(store, 3.0, "alive")] == ["ann"]


def test_room_event_names_are_written_once() -> None:
    """Each outgoing room event name is a rooms.events constant, documented in
    docs/protocol.md, and no module of rooms/ or server/ spells it again."""
    root = Path(__file__).parent.parent
    protocol = (root / "docs" / "protocol.md").read_text(encoding="utf-8")
    spelled = []
    for path in sorted([*root.glob("rooms/*.py"), *root.glob("server/*.py")]):
        if path.name == "events.py":
            continue
        text = path.read_text(encoding="utf-8")
        # ("reaction" alone is also a rate-limit action's name)
        names = [name for name in room_events.ALL if ":" in name]
        spelled += [f"{path.name}: {name}" for name in names if f'"{name}"' in text]
    assert spelled == []
    assert [name for name in room_events.ALL if f"`{name}`" not in protocol] == []
