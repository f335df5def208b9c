"""Presence: who is here, counts per role, join and leave, and the nodes'
heartbeat and sweep.

A connection is a field `<node>|<sid>` of the room's sessions hash, so a node
that dies can have its connections swept by the others: every node marks
itself alive (`heartbeat`) and closes the connections of nodes whose mark is
gone (`sweep`). `server/` only schedules them and announces the departures.
Must not import any framework.
"""

from dataclasses import dataclass

from rooms import keys
from rooms.lifecycle import list_rooms
from rooms.model import Participant
from rooms.store import RoomStore

# The snapshot lists every notable participant (staff, stage, raised hands)
# and this many listeners; `counts` always has the totals.
LISTENERS_IN_SNAPSHOT = 100
# A node's mark of life lasts this long; it renews it more often than that.
NODE_TTL_S = 15
SWEEP_ROOMS = 10_000  # the sweep looks at this many rooms


def is_notable(p: Participant) -> bool:
    """Who the snapshot always lists and a large room still names in its
    presence deltas: staff and speakers, people on stage, raised hands (the
    rule of rooms/lua/people.lua)."""
    return p.role != "listener" or p.on_stage or p.hand_raised


@dataclass(frozen=True, slots=True)
class Presence:
    participants: list[Participant]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Arrival:
    person: Participant
    joined: bool  # the identity's first connection
    staged: bool  # a host put back on the stage


@dataclass(frozen=True, slots=True)
class Departure:
    identity: str
    person: Participant | None
    left: bool  # the identity's last connection
    stage_change: str  # "" none, "stage" left the stage, "hand" hand lowered

    @property
    def notable(self) -> bool:
        """Was notable until this leave (the leave took them off the stage)."""
        return self.person is not None and (is_notable(self.person) or bool(self.stage_change))


def session_field(node: str, sid: str) -> str:
    return f"{node}|{sid}"


async def join(
    store: RoomStore,
    room: str,
    field: str,
    identity: str,
    name: str,
    role: str,
    now: float,
    *,
    token_exp: float,
) -> Arrival:
    raw, joined, staged = await store.run(
        "rooms/join",
        [
            keys.room(room),
            keys.people(room),
            keys.notable(room),
            keys.online(room),
            keys.sessions(room),
            keys.role_counts(room),
            keys.log(room),
            keys.log_head(room),
            keys.stats(room),
            keys.stats_joins(room),
            keys.stats_listeners(room),
            keys.stats_unique(room),
        ],
        [field, identity, name, role, now, token_exp],
    )
    return Arrival(Participant.from_json(raw), bool(joined), bool(staged))


async def leave(store: RoomStore, room: str, field: str, identity: str, now: float) -> Departure:
    raw, left, change = await store.run(
        "rooms/leave",
        [
            keys.people(room),
            keys.notable(room),
            keys.online(room),
            keys.sessions(room),
            keys.role_counts(room),
            keys.log(room),
            keys.log_head(room),
            keys.stats(room),
            keys.stats_listeners(room),
        ],
        [field, identity, now],
    )
    person = Participant.from_json(raw) if raw else None
    return Departure(identity, person, bool(left), change or "")


async def counts(store: RoomStore, room: str) -> dict[str, int]:
    raw = await store.redis.hgetall(keys.role_counts(room))
    by_role = {role: max(0, int(n)) for role, n in raw.items()}
    return {"total": sum(by_role.values()), **by_role}


async def view(store: RoomStore, room: str) -> Presence:
    """Notable participants who are online plus a sample of listeners."""
    r = store.redis
    notable = sorted(await r.smembers(keys.notable(room)))
    counts_online = await r.hmget(keys.online(room), notable) if notable else []
    online_notable = [i for i, n in zip(notable, counts_online, strict=True) if n]
    _, sample = await r.hscan(keys.online(room), count=LISTENERS_IN_SNAPSHOT)
    listeners = [i for i in sample if i not in notable][:LISTENERS_IN_SNAPSHOT]
    people = await store.participants(room, online_notable + listeners)
    return Presence(people, await counts(store, room))


async def sweep_dead_nodes(
    store: RoomStore, room: str, live_nodes: set[str], now: float
) -> list[Departure]:
    """Close the connections of nodes that stopped heartbeating."""
    fields = await store.redis.hgetall(keys.sessions(room))
    return [
        await leave(store, room, field, identity, now)
        for field, identity in fields.items()
        if field.split("|", 1)[0] not in live_nodes
    ]


async def heartbeat(store: RoomStore, node: str, now: float) -> None:
    """`node` is alive for NODE_TTL_S more seconds."""
    await store.redis.set(keys.node(node), repr(now), ex=NODE_TTL_S)
    await store.redis.sadd(keys.NODES, node)


async def node_gone(store: RoomStore, node: str) -> None:
    """`node` stops cleanly: its mark goes (a sweep then closes its connections)."""
    await store.redis.delete(keys.node(node))


async def sweep(
    store: RoomStore, now: float, exclude: str | None = None
) -> list[tuple[str, Departure]]:
    """Close the connections of every node that stopped heartbeating (and of
    `exclude`, a node closing down), then forget those nodes. Returns each
    closed connection's (room id, departure)."""
    nodes = await store.redis.smembers(keys.NODES)
    live = {n for n in nodes if await store.redis.exists(keys.node(n))}
    live.discard(exclude or "")
    closed = [
        (room.id, gone)
        for room in await list_rooms(store, limit=SWEEP_ROOMS)
        for gone in await sweep_dead_nodes(store, room.id, live, now)
    ]
    dead = nodes - live
    if dead:
        await store.redis.srem(keys.NODES, *dead)
    return closed
